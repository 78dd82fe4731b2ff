#!/usr/bin/env bash
# Runs foramen-probe from the CUDA bundle this file is packed in (tools/cuda_bundle.py):
# ONNX Runtime 1.31.1 with its CUDA provider beside it, CUDA 13 and cuDNN 9 from the
# machine's Python environment (PyTorch's nvidia-* wheels under site-packages/nvidia/).
# Arguments go to foramen-probe as they are; its JSON is the only thing on stdout, the
# library check goes to stderr first. See docs/GPU.md.
#   run-probe.sh --model models/lumbar-synth.onnx --provider cuda --require-provider --compare-cpu
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=${PYTHON:-python3}

# Every folder under the nvidia namespace package that holds a shared library: the CUDA
# 13 wheels put theirs in nvidia/cu13/lib, cuDNN in nvidia/cudnn/lib; listing them all
# follows whichever layout the installed wheels use.
nv_dirs=$("$py" - <<'EOF' 2>/dev/null
import os

try:
    import nvidia
except ImportError:
    raise SystemExit(0)
dirs = set()
for root in nvidia.__path__:
    for d, _, files in os.walk(root):
        if any(f.startswith("lib") and ".so" in f for f in files):
            dirs.add(d)
print(":".join(sorted(dirs)))
EOF
)
if [ -z "$nv_dirs" ]; then
    # No importable nvidia package for $py: look where the GPU image keeps its venv.
    nv_dirs=$(find /opt/*/.venv/lib/python3*/site-packages/nvidia /usr/local/lib/python3*/dist-packages/nvidia \
        -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd: -)
fi
# The driver's own libcuda.so.1 where containers mount it, if the loader does not know it.
drv_dirs=$(for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -d "$d" ] && printf '%s:' "$d"; done)

export LD_LIBRARY_PATH="$here${nv_dirs:+:$nv_dirs}${drv_dirs:+:${drv_dirs%:}}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ORT_DYLIB_PATH="$here/libonnxruntime.so.1.31.1"

{
    echo "== run-probe.sh: $here"
    echo "== nvidia library folders: ${nv_dirs:-NONE FOUND (no CUDA wheels for this python3: set PYTHON=)}"
    command -v nvidia-smi >/dev/null && nvidia-smi -L
    echo "== ldd libonnxruntime_providers_cuda.so | grep 'not found':"
    ldd_out=$(ldd "$here/libonnxruntime_providers_cuda.so" 2>&1)
    ldd_rc=$?
    missing=$(grep 'not found' <<<"$ldd_out")
    if [ "$ldd_rc" -ne 0 ]; then
        echo "ldd failed (exit $ldd_rc): $ldd_out"
    else
        echo "${missing:-(none: every library it links is found)}"
    fi
    # cuDNN is opened at run time, not linked: ldd cannot see it.
    cudnn=$(IFS=:; for d in $LD_LIBRARY_PATH; do ls "$d"/libcudnn.so.9* 2>/dev/null; done | head -1)
    echo "== libcudnn.so.9 (opened at run time): ${cudnn:-NOT FOUND on LD_LIBRARY_PATH}"
} >&2

exec "$here/foramen-probe" "$@"
