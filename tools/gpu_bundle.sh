#!/usr/bin/env bash
# gpu_bundle.sh: run HERE (the build machine, no GPU) before a GPU check.
# Builds rn50 and the GPU test programs with CUDA and packs them into one
# archive, build/gpu_bundle.tar.xz (a few MB: the two ~29 MB binaries share
# most of their bytes, which xz's 64 MiB window removes), so that the GPU
# machine gets everything it runs without compiling anything.
# Then, with the device tool:
#   run(command="bash tools/gpu_check.sh", carry=["build/gpu_bundle.tar.xz"], timeout_s=560)
set -euo pipefail
cd "$(dirname "$0")/.."
make CUDA=1 -j"$(nproc)" rn50 build/tests/test_cuda_ops >/dev/null
# every GPU test program (test_cuda_*, test_gpu_*) that the Makefile builds
extra=()
for t in tests/test_cuda_*.c tests/test_gpu_*.c; do
  [ -f "$t" ] || continue
  b=build/tests/$(basename "$t" .c)
  make CUDA=1 "$b" >/dev/null
  extra+=("$b")
done
files=(rn50)
for b in "${extra[@]}"; do files+=("$b"); done
tar -cf - "${files[@]}" | xz -9e -T1 >build/gpu_bundle.tar.xz
echo "build/gpu_bundle.tar.xz: $(du -h build/gpu_bundle.tar.xz | cut -f1) (${files[*]})"
