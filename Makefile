# rn50 build. `make` builds ./rn50 (CPU; the CUDA backend too when nvcc is
# found, or force with CUDA=0/1). `make test` runs the whole suite and ends
# with "N passed, N failed"; `make asan` runs it under ASan+UBSan.
CC      ?= gcc
PYTHON  ?= /usr/bin/python3
NVCC    ?= nvcc
CUDA_HOME ?= /usr/local/cuda
BUILD   ?= build
OPT     ?= -O2
ARCHFLAGS ?= -mavx2 -mfma -mf16c
.DEFAULT_GOAL := all
CUDA    ?= $(shell command -v $(NVCC) >/dev/null 2>&1 && echo 1 || echo 0)

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(ARCHFLAGS) -g -fopenmp $(WARN) -MMD -MP
# image libraries and the CUDA runtime; tools/gpu_bundle.sh links libjpeg and
# the CUDA runtime statically (-l:libjpeg.a ...) for a machine without them
IMG_LIBS ?= -lturbojpeg -ljpeg -lspng -lz
CUDART_LIB ?= -lcudart
LDLIBS  += $(IMG_LIBS) -lm -lpthread -fopenmp

SRC_C   := $(filter-out src/cli/main.c,$(wildcard src/*/*.c))
OBJ     := $(SRC_C:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

ifeq ($(CUDA),1)
CU_SRC  := $(wildcard src/cuda/*.cu)
CU_OBJ  := $(CU_SRC:%.cu=$(BUILD)/%.o)
NVFLAGS ?= -O2 -std=c++17 -Xcompiler -fPIC,-Wall,-Wno-unused-parameter \
  -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_86,code=sm_86 \
  -gencode=arch=compute_89,code=sm_89 -gencode=arch=compute_90,code=sm_90 \
  -gencode=arch=compute_90,code=compute_90
CFLAGS  += -DRN50_CUDA=1 -I$(CUDA_HOME)/include
LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudnn -lcublasLt -lcublas $(CUDART_LIB) -lstdc++ -ldl -lrt
else
CU_OBJ  :=
endif

# objects are rebuilt when the flags change (CUDA=0 <-> CUDA=1, asan, ...)
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_NOW := $(CC) $(CFLAGS) CUDA=$(CUDA) $(NVFLAGS)
$(shell mkdir -p $(BUILD); echo '$(FLAGS_NOW)' | cmp -s - $(FLAGS_STAMP) 2>/dev/null || echo '$(FLAGS_NOW)' > $(FLAGS_STAMP))
$(OBJ) $(CU_OBJ) $(BUILD)/src/cli/main.o: $(FLAGS_STAMP)
# nvcc writes no dependency files here: every CUDA object depends on every
# header it may include
$(CU_OBJ): $(wildcard src/cuda/*.h) src/backend.h $(wildcard src/core/*.h)

all: rn50

rn50: $(BUILD)/librn50.a $(BUILD)/src/cli/main.o
	$(CC) $(CFLAGS) -o $@ $(BUILD)/src/cli/main.o $(BUILD)/librn50.a $(LDLIBS)

$(BUILD)/librn50.a: $(OBJ) $(CU_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -I$(CUDA_HOME)/include -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/librn50.a tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(BUILD)/librn50.a $(LDLIBS)

# PyTorch reference tensors for the parity tests (Debian python3-torch)
$(BUILD)/refs/.done: tools/torch_ref.py
	@mkdir -p $(BUILD)/refs
	$(PYTHON) tools/torch_ref.py $(BUILD)/refs
	@touch $@

tests: rn50 $(TEST_BIN)

test: tests $(BUILD)/refs/.done
	@RN50_REFS=$(BUILD)/refs RN50_BIN=./rn50 tests/run_tests.sh $(BUILD)

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" CUDA=0 test-asan

test-asan: $(BUILD)/refs/.done
	$(MAKE) BUILD=$(BUILD) OPT="$(OPT)" CUDA=0 rn50-asan $(TEST_BIN)
	@ASAN_OPTIONS=detect_leaks=0 RN50_REFS=$(BUILD)/refs RN50_BIN=./$(BUILD)/rn50 tests/run_tests.sh $(BUILD)

rn50-asan: $(BUILD)/librn50.a $(BUILD)/src/cli/main.o
	$(CC) $(CFLAGS) -o $(BUILD)/rn50 $(BUILD)/src/cli/main.o $(BUILD)/librn50.a $(LDLIBS)

bench: rn50
	tools/bench_cpu.sh

clean:
	rm -rf build build-asan rn50

.PHONY: all test tests asan test-asan rn50-asan bench clean
-include $(OBJ:.o=.d) $(BUILD)/src/cli/main.d
