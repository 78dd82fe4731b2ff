#!/usr/bin/env bash
# The GPU machine's side of docs/GPU.md: foramen-probe from the CUDA bundle on the models
# of issue 19, item 5, from the repository root, results in $OUT (at most 8 files, what
# the device tool brings back: cuda mode writes 3 models x 2 + 1 WebGPU report + the log).
#   OUT=... bash tools/gpu-probe.sh models call 1: the carried FP32 models (build products of
#                                          `make models`, not in git) arrived; nothing runs
#   OUT=... bash tools/gpu-probe.sh cpu    call 2: the first part only; CPU rows (all cores)
#   OUT=... bash tools/gpu-probe.sh cuda   call 3: all parts; ldd check, CUDA rows, --compare-cpu
# SIZE, WARMUP, RUNS, MODELS (names under models/, without .onnx) and PARTS (the parts'
# folder) change what runs; a rehearsal without a GPU sets them small.
set -uo pipefail
mode=${1:?usage: gpu-probe.sh models|cpu|cuda}
OUT=${OUT:?set OUT}
dir=${PROBE_DIR:-/tmp/foramen-probe}
parts=${PARTS:-.cuda-bundle/parts}
size=${SIZE:-1920x1080}
warmup=${WARMUP:-50}
runs=${RUNS:-300}
models=${MODELS:-lumbar-synth lumbar-synth.int8 vocalfolds}
log="$OUT/$mode.log"

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
    echo "cores: $(nproc)"
} | tee "$log"

# The device tool does not keep one call's carried paths for the next: seen on the H200
# on 2026-12-04, a folder carried in one call was gone in the next, the machine still warm
# (the working tree is synced again, carried paths included). So every call copies what
# it was carried out of the repository into $keep, and restores from there what this
# call was not carried; /tmp lasts as long as the machine.
keep=${KEEP_DIR:-/tmp/foramen-carried}
declare -A carried=()
for m in $models; do carried["models/$m.onnx"]=1; done
shopt -s nullglob
for f in "$parts"/*; do carried["$f"]=1; done
for f in "$keep/$parts"/*; do carried["${f#"$keep/"}"]=1; done
shopt -u nullglob
for f in "${!carried[@]}"; do
    if [ -f "$f" ]; then
        mkdir -p "$keep/$(dirname "$f")" && cp -p "$f" "$keep/$f"
    elif [ -f "$keep/$f" ]; then
        mkdir -p "$(dirname "$f")" && cp -p "$keep/$f" "$f" && echo "$f: restored from $keep (carried in an earlier call)" | tee -a "$log"
    fi
done

# The FP32 models are exported from their checkpoints by `make models` and ignored by git,
# so the device tool does not send them with the tree: they come as carried paths.
missing=()
for m in $models; do
    if [ -f "models/$m.onnx" ]; then
        echo "models/$m.onnx: $(stat -c %s "models/$m.onnx") bytes, sha256 $(sha256sum "models/$m.onnx" | cut -c1-16)" | tee -a "$log"
    else
        missing+=("models/$m.onnx")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "missing: ${missing[*]} (build products of make models, not in git: carry them, docs/GPU.md call 1)" | tee -a "$log"
    exit 1
fi

case $mode in
models)
    exit 0
    ;;
cpu)
    python3 tools/cuda_bundle.py reassemble --partial --parts "$parts" --to "$dir" 2>&1 | tee -a "$log" || exit 1
    export ORT_DYLIB_PATH="$dir/libonnxruntime.so.1.31.1"
    probe=("$dir/foramen-probe" --provider cpu)
    ;;
cuda)
    python3 tools/cuda_bundle.py reassemble --parts "$parts" --to "$dir" 2>&1 | tee -a "$log" || exit 1
    probe=("$dir/run-probe.sh" --provider cuda --require-provider --compare-cpu)
    ;;
*)
    echo "unknown mode $mode: models, cpu or cuda" >&2
    exit 2
    ;;
esac

reports=()
for m in $models; do
    json="$OUT/$mode-$m.json"
    echo "== $mode $m" >>"$log"
    "${probe[@]}" --model "models/$m.onnx" --size "$size" --warmup "$warmup" --runs "$runs" >"$json" 2>>"$log"
    rc=$?
    echo "$mode $m: exit $rc"
    if [ "$rc" -eq 0 ]; then
        reports+=("$json")
    else
        rm -f "$json"
    fi
    if [ "$mode" = cuda ]; then
        # The same with CUDA graphs on the I/O-bound runs (model_bound_ms).
        json="$OUT/graph-$m.json"
        "${probe[@]}" --cuda-graph --model "models/$m.onnx" --size "$size" --warmup "$warmup" --runs "$runs" >"$json" 2>>"$log"
        rc=$?
        echo "cuda-graph $m: exit $rc"
        if [ "$rc" -eq 0 ]; then reports+=("$json"); else rm -f "$json"; fi
    fi
done
if [ "$mode" = cuda ]; then
    # WebGPU over the NVIDIA Vulkan driver, lumbar-synth only (the file limit). The image
    # may lack the Vulkan loader: unpack the carried .gl packages (docs/GPU.md) then.
    if ! ldconfig -p | grep -q libvulkan.so.1 && ls .gl/*.deb >/dev/null 2>&1; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    fi
    icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -f "$icd" ] && export VK_DRIVER_FILES=$icd
    json="$OUT/webgpu-lumbar-synth.json"
    "$dir/run-probe.sh" --provider webgpu --compare-cpu --model models/lumbar-synth.onnx \
        --size "$size" --warmup "$warmup" --runs "$runs" >"$json" 2>>"$log"
    rc=$?
    echo "webgpu lumbar-synth: exit $rc"
    if [ "$rc" -eq 0 ]; then reports+=("$json"); else rm -f "$json"; fi
fi
# The library checks, any failure's reason, then the table rows (the log is short; the
# table goes to the output only, to stay within the 8 files).
cat "$log"
if [ ${#reports[@]} -gt 0 ]; then
    python3 tools/cuda_bundle.py table "${reports[@]}"
fi
[ ${#reports[@]} -gt 0 ]
