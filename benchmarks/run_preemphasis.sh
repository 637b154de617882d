#!/usr/bin/env bash
# Pre-emphasis against the bottleneck comparison's VQ run (bn-vq: recipes/bottlenecks variant=vq, 7 CPU
# minutes): the same recipe and minutes with model.preemphasis=0.85. Waits for run_final.sh to finish.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
while pgrep -f "benchmarks/run_final.sh" >/dev/null; do sleep 10; done
echo "== preemphasis $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
$PY tools/bench_quality.py --name preemph-0.85 --recipe recipes/bottlenecks --minutes 7 --every 7 \
    variant=vq model.preemphasis=0.85 > benchmarks/log-preemph-0.85.txt 2>&1
echo "== done $(date +%T)"
