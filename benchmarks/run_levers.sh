#!/usr/bin/env bash
# The ablation of this round, one training at a time (each: 10 CPU minutes, scored at 5 and 10).
# Waits for the baseline (started separately) to finish first.
set -u
cd "$(dirname "$0")/.."
while pgrep -f "bench_quality.py --name baseline " >/dev/null; do sleep 10; done
run() { name=$1; shift; echo "== $name $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"; \
  .venv/bin/python tools/bench_quality.py --name "$name" --minutes 10 --every 5 "$@" > "benchmarks/log-$name.txt" 2>&1; }
run bf16 train.precision=bf16
run cosine train.lr_schedule=cosine train.warmup_steps=100
run jitter model.jitter=0.12
echo "== done $(date +%T)"
