#!/usr/bin/env bash
# Generation-time levers on the bf16 run's 10-minute checkpoint (no training), after the training levers.
set -u
cd "$(dirname "$0")/.."
while pgrep -f run_levers.sh >/dev/null; do sleep 10; done
for lever in "top-p0.9 --top-p 0.9" "temp0.9 --temperature 0.9"; do
  set -- $lever; name=bf16-$1; shift
  echo "== $name $(date +%T)"
  .venv/bin/python tools/bench_quality.py --name "$name" --from-run bf16 --at 10 "$@" train.precision=bf16 \
    > "benchmarks/log-$name.txt" 2>&1
done
echo "== done $(date +%T)"
