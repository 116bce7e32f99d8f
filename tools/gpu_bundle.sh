#!/usr/bin/env bash
# gpu_bundle.sh: run HERE (the build machine, no GPU) before a GPU check.
# Builds rn50 and the GPU test programs with CUDA and packs what the GPU
# machine runs into one archive, build/gpu_bundle.tar.xz, so that nothing is
# compiled there. The GPU machine (Ubuntu 24.04, its CUDA 13 and cuDNN 9 in
# /usr/local/cuda and PyTorch's venv) has no libjpeg62 / libspng, so:
#   - libjpeg (and libturbojpeg) and the CUDA runtime are linked statically
#     (make IMG_LIBS=... CUDART_LIB=...);
#   - every other shared library the binaries load from outside CUDA / cuDNN /
#     cuBLAS / glibc / libstdc++ (libspng.so.0, libgomp.so.1, libz.so.1) is
#     copied into build/gpu_lib; tools/gpu_check.sh puts on the library path
#     only those the machine lacks;
#   - the binaries are copied without debug sections (the archive stays a few
#     MB: xz's 64 MiB window sees the three binaries share most of their bytes).
# build/gpu_bundle.info records the commit, the build flags and what ldd saw.
# Then, with the device tool, from the repository root:
#   run(command="bash tools/gpu_check.sh", carry=["build/gpu_bundle.tar.xz"], timeout_s=560)
set -euo pipefail
cd "$(dirname "$0")/.."
PORTABLE=(IMG_LIBS="-l:libturbojpeg.a -l:libjpeg.a -lspng -lz" CUDART_LIB="-l:libcudart_static.a")
progs=(build/tests/test_cuda_ops)
for t in tests/test_cuda_*.c tests/test_gpu_*.c; do
  [ -f "$t" ] || continue
  b=build/tests/$(basename "$t" .c)
  [ "$b" = build/tests/test_cuda_ops ] || progs+=("$b")
done
make CUDA=1 -j"$(nproc)" build/librn50.a build/src/cli/main.o >/dev/null
# relink with the portable flags (make would keep binaries linked before)
rm -f rn50 "${progs[@]}"
make CUDA=1 "${PORTABLE[@]}" rn50 "${progs[@]}" >/dev/null

stage=build/gpu_stage
rm -rf "$stage" build/gpu_lib
mkdir -p "$stage/build/tests" "$stage/build/gpu_lib"
for b in rn50 "${progs[@]}"; do
  objcopy --strip-debug "$b" "$stage/$b"
done
# shared libraries to ship: what ldd resolves outside the CUDA toolkit and
# the base system every Linux with a C++ compiler has
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libgcc_s\.|libstdc\+\+\.|libcudnn|libcublas|libcudart|libnvrtc)'
for b in rn50 "${progs[@]}"; do
  ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  if echo "$name" | grep -Eq "$skip"; then continue; fi
  cp -L "$path" "$stage/build/gpu_lib/$name"
done
{
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname) ($(. /etc/os-release && echo "$PRETTY_NAME"))"
  echo "nvcc: $(nvcc --version | tail -n 1)"
  echo "cuDNN headers: $(awk '/define CUDNN_MAJOR|define CUDNN_MINOR|define CUDNN_PATCHLEVEL/ {printf "%s ", $3}' /usr/local/cuda/include/cudnn_version.h 2>/dev/null)"
  echo "link: make CUDA=1 ${PORTABLE[*]}"
  echo "shipped libraries: $(ls "$stage/build/gpu_lib" | tr '\n' ' ')"
  echo "ldd rn50 here:"
  ldd rn50 | sed 's/^/  /'
} >"$stage/build/gpu_bundle.info"
cp -r "$stage/build/gpu_lib" build/gpu_lib
cp "$stage/build/gpu_bundle.info" build/gpu_bundle.info
(cd "$stage" && tar -cf - rn50 build) | xz -9 -T1 >build/gpu_bundle.tar.xz
rm -rf "$stage"
size=$(stat -c %s build/gpu_bundle.tar.xz)
echo "build/gpu_bundle.tar.xz: $((size / 1024)) KiB (rn50 ${progs[*]}, build/gpu_lib: $(ls build/gpu_lib | tr '\n' ' '))"
if [ "$size" -gt $((60 * 1024 * 1024)) ]; then
  echo "gpu_bundle: the archive is over 60 MiB; the device tool carries at most 64 MiB in all" >&2
  exit 1
fi
