#!/usr/bin/env bash
# One prepared run on a lent GPU machine (issue 3, with issue 7's GPU inference reference).
#
# Trains the vocalfolds variants below in parallel on one GPU (each its own process with
# DATA_WORKERS loader workers, stopping at MAX_MINUTES at the latest), times the recipe's
# models under PyTorch CUDA, and packs logs, metrics, checkpoints and ONNX files into
# $OUT/runs.tgz. Run from the repository root:
#
#   DATA=.vf OUT=/tmp/out bash models/training/device_run.sh
#
# DATA is a copy of ../shared/data/vocalfolds that the lent machine can see (it does not
# see ../shared), made by `python models/training/jpeg_copy.py ../shared/data/vocalfolds
# .vf`, with /.vf/ in .git/info/exclude and `.vf` named in the call's `carry`. Its frames
# are quality-95 JPEG to fit the 64 MiB transfer limit: validation printed here is on
# those JPEGs; the model cards quote `foramen eval` on the original PNGs. CONFIG picks
# another recipe (e.g. configs/vocalfolds-lite0-long.toml with BASE "-" in VARIANTS).
# A path carried in one device call is gone in the next: data that needs two calls
# (`jpeg_copy.py ... --spill .vft --max-mb 22` beside the encoder's wheel) is copied to
# /tmp in the first and back in the second (training README, "Long runs on the lent
# GPU", 2026-12-04).
set -u
DATA=${DATA:-.vf}
OUT=${OUT:?set OUT}
EPOCHS=${EPOCHS:-150}
MAX_MINUTES=${MAX_MINUTES:-7.0}
DATA_WORKERS=${DATA_WORKERS:-3}
RUNS=${RUNS:-/tmp/runs}
DEVICE=${DEVICE:-cuda}
CONFIG=${CONFIG:-configs/vocalfolds.toml}
# The bundled models' configs timed under PyTorch CUDA: "CONFIG:CLASSES:NAME ...".
LAT_CONFIGS=${LAT_CONFIGS:-configs/vocalfolds.toml:7:vocalfolds-w16-320 configs/lumbar-synth.toml:4:lumbar-synth}
# What each run's archive leaves out (tar patterns): checkpoints by default; with
# TAR_EXCLUDE='best.pt *.onnx' the last checkpoint comes back instead of the ONNX files
# (export it here with `python -m foramen_train.export`), so four runs fit in 64 MiB.
TAR_EXCLUDE=${TAR_EXCLUDE:-*.pt}
EXTRA=${EXTRA:-}          # more train overrides, e.g. for a CPU rehearsal
LAT_REPEATS=${LAT_REPEATS:-300}
root=$(pwd)
cd models/training || exit 1
export PYTHONUNBUFFERED=1
mkdir -p "$RUNS"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$RUNS/gpu.txt"
nproc | tee -a "$RUNS/gpu.txt"
python3 -c 'import torch, onnxruntime, onnx; print("torch", torch.__version__, "ort", onnxruntime.__version__, "onnx", onnx.__version__)' | tee -a "$RUNS/gpu.txt"

# NAME BASE SIZE DETAIL: decoder, SPPM and head widths scale with BASE as in sweep.py;
# BASE "-" sets the input size alone (a pretrained encoder's config keeps its widths).
variants=(
  "w16-512-d16 16 512 16"
  "w16-512 16 512 0"
  "w24-448-d24 24 448 24"
  "w32-448-d32 32 448 32"
)
# VARIANTS="NAME BASE SIZE DETAIL [OVERRIDES...];..." replaces the list (e.g. one long run
# with all workers); words after DETAIL go to that run's command line (e.g. "--set train.seed=1").
if [ -n "${VARIANTS:-}" ]; then
  IFS=';' read -r -a variants <<<"$VARIANTS"
fi
overrides() {
  local b=$2 s=$3 d=$4
  if [ "$b" = "-" ]; then
    echo "--set model.width=$s --set model.height=$s"
    return
  fi
  echo "--set model.width=$s --set model.height=$s --set model.base_channels=$b" \
    "--set model.decoder_channels=[$b,$((2 * b)),$((4 * b))] --set model.sppm_channels=$((4 * b))" \
    "--set model.head_channels=$((2 * b)) --set model.detail_channels=$d"
}
for v in "${variants[@]}"; do
  read -r name b s d rest <<<"$v"
  # shellcheck disable=SC2046,SC2086
  python3 -m foramen_train.train --config "$CONFIG" --out "$RUNS/$name" \
    --data-root "$root/$DATA" --device "$DEVICE" --no-progress --epochs "$EPOCHS" \
    --set data.num_workers="$DATA_WORKERS" --set train.max_minutes="$MAX_MINUTES" \
    $(overrides $name $b $s $d) $EXTRA $rest >"$RUNS/$name.log" 2>&1 &
done
wait
for v in "${variants[@]}"; do
  read -r name _ <<<"$v"
  echo "== $name"; grep -v Warning "$RUNS/$name.log" | tail -n 4
done

# GPU inference reference: the bundled models' configs and the variants (weights do not
# change the time). SKIP_LATENCY=1 leaves it out when the call is short.
lat="$RUNS/torch_cuda_latency.jsonl"
touch "$lat"
if [ -z "${SKIP_LATENCY:-}" ]; then
for c in $LAT_CONFIGS; do
  IFS=: read -r conf classes lname <<<"$c"
  python3 -m foramen_train.torch_latency --config "$conf" --num-classes "$classes" --name "$lname" \
    --device "$DEVICE" --repeats "$LAT_REPEATS" --batch 1 --batch 8 --json "$lat" >/dev/null
done
for v in "${variants[@]}"; do
  read -r name b s d _ <<<"$v"
  # shellcheck disable=SC2046
  python3 -m foramen_train.torch_latency --config "$CONFIG" --num-classes 7 --name "$name" \
    --device "$DEVICE" --repeats "$LAT_REPEATS" --batch 1 --batch 8 --json "$lat" $(overrides $name $b $s $d) >/dev/null
done
fi
cat "$lat"
# At most 8 files of 16 MiB come back: one archive per run (ONNX, metrics, config, log;
# no checkpoints) and one with the machine facts and the latency table.
for v in "${variants[@]}"; do
  read -r name _ <<<"$v"
  read -r -a patterns <<<"$TAR_EXCLUDE"   # no glob expansion here
  excludes=()
  for pattern in "${patterns[@]}"; do excludes+=("--exclude=$pattern"); done
  tar -C "$RUNS" -czf "$OUT/$name.tgz" "${excludes[@]}" "$name" "$name.log"
done
tar -C "$RUNS" -czf "$OUT/facts.tgz" gpu.txt torch_cuda_latency.jsonl
ls -la "$OUT"
