#!/usr/bin/env bash
# Perception on a GPU machine where PyBullet is not installed: training with mixed precision, held-out
# evaluation, and batched inference on CUDA and on that machine's CPU. The datasets are collected
# beforehand on a machine with the simulator:
#   drivelab perception collect --out DATA/train --episodes 80 --split train
#   drivelab perception collect --out DATA/heldout --episodes 20 --split heldout
# then, on the GPU machine, from the repository root:
#   DATA=DATA OUT=results bash benchmarks/perception_gpu.sh
# It needs torch, numpy, gymnasium and opencv there (PYTHONPATH may point at a folder of extra wheels).
set -u -o pipefail
: "${DATA:?set DATA to the folder holding train/ and heldout/}" "${OUT:?set OUT to a folder for the results}"
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-8}
RUN=${RUN:-$OUT/cnn}  # where the trained model goes
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
drivelab() { $PY -m drivelab.cli "$@"; }
nvidia-smi -L || true
rm -rf "$RUN" "$RUN-cpu-1epoch"
start=$(date +%s.%N)
drivelab perception train --data "$DATA/train" --heldout "$DATA/heldout" --out "$RUN" --epochs "$EPOCHS" \
  --device "$DEVICE" --wandb disabled --json > "$OUT/train.json" || exit 1
echo "training process: $(awk "BEGIN{print $(date +%s.%N) - $start}") s wall time (Python start and data loading included)"
drivelab perception eval "$RUN" --data "$DATA/heldout" --device "$DEVICE" --json > "$OUT/eval.json" || exit 1
for batch in 256 1024; do
  drivelab bench perception --cnn-only --model "$RUN" --batch-size "$batch" --seconds 20 --json > "$OUT/inference_$batch.json" || exit 1
done
# The same machine's CPU, for reference: one epoch.
drivelab perception train --data "$DATA/train" --out "$RUN-cpu-1epoch" --epochs 1 --device cpu --wandb disabled \
  --json > "$OUT/train_cpu_1epoch.json"
cat "$OUT"/*.json
