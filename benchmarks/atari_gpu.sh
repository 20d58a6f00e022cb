#!/usr/bin/env bash
# Atari on a GPU machine: PPO on Pong through `drivelab train` with rl-baselines3-zoo's hyperparameters,
#  1. training throughput on each vector backend (default, envpool): a short trial each, steps/s from its status
#     (THROUGHPUT=0 skips it, to give the device time to the long run);
#  2. a long PPO run (envpool) stopped with SIGINT after STOP_S seconds and resumed by the same command from its
#     checkpoint for RESUME_S more, its evaluations (raw Pong score, whole games) in evaluations.csv.
# From the repository root:  OUT=results bash benchmarks/atari_gpu.sh
# Tracking is off (W&B and TensorBoard are not needed to measure); the device is CUDA.
set -u -o pipefail
: "${OUT:?set OUT to a folder for the results}"
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
SHORT_STEPS=${SHORT_STEPS:-20000}
STOP_S=${STOP_S:-220}
RESUME_S=${RESUME_S:-100}
EVERY=${EVERY:-200000}
RUNS=${RUNS:-/tmp/atari-runs}
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
mkdir -p "$OUT" "$RUNS"
exec > >(tee -a "$OUT/log.txt") 2>&1
drivelab() { $PY -m drivelab.cli "$@"; }
nvidia-smi -L || true
config() {  # name, budget, evaluation interval, evaluation games, backend
  cat > "$RUNS/$1.yaml" <<YAML
name: $1
env: {id: ALE/Pong-v5, options: {vec_env: $5}}
agents: [{name: ppo, algo: ppo}]
seeds: [0]
budget_steps: $2
evaluation: {every_steps: $3, episodes: $4}
checkpoint_every_steps: 50000
tracking: {wandb: {mode: disabled}, tensorboard: false}
device: $DEVICE
YAML
}
THROUGHPUT=${THROUGHPUT:-1}
for backend in default envpool; do
  [ "$THROUGHPUT" = 1 ] || break
  config "throughput_$backend" "$SHORT_STEPS" 100000000 1 "$backend"
  drivelab train "$RUNS/throughput_$backend.yaml" --out "$RUNS" --json > "$OUT/throughput_$backend.json" || exit 1
  $PY -c "import json,sys; s=json.load(open(sys.argv[1])); print(sys.argv[2], s['env_steps'], 'steps in', round(s['train_seconds'],1), 's of training:', round(s['env_steps']/s['train_seconds']), 'steps/s')" "$OUT/throughput_$backend.json" "$backend"
done
config pong_ppo 10000000 "$EVERY" 2 envpool
timeout -s INT "$STOP_S" $PY -m drivelab.cli train "$RUNS/pong_ppo.yaml" --out "$RUNS"
echo "first command ended with status $? (124: timeout stopped it with SIGINT; it checkpointed and said so)"
timeout -s INT "$RESUME_S" $PY -m drivelab.cli train "$RUNS/pong_ppo.yaml" --out "$RUNS"
echo "second command ended with status $?"
cp "$RUNS/pong_ppo/ppo/seed-0/evaluations.csv" "$OUT/pong_ppo_evaluations.csv"
cp "$RUNS/pong_ppo/ppo/seed-0/status.json" "$OUT/pong_ppo_status.json"
cat "$OUT/pong_ppo_evaluations.csv"
