#!/usr/bin/env bash
# The prior's speaker gap per voice-removal lever (issue 28, part 2). For each named run of the quality harness
# (runs/quality/NAME), train the default prior (prior=wavenet) on its last checkpoint's codes for MINUTES CPU
# minutes (default 5), then score it on the test codes with and without the speaker:
#   MINUTES=5 bash benchmarks/run_prior_gap.sh default-20 adv-0.03 ...
# Logs: benchmarks/log-prior-NAME.txt; reports: runs/quality/NAME/prior/evaluation-test.md.
set -u
cd "$(dirname "$0")/.."
minutes=${MINUTES:-5}
for name in "$@"; do
  run=runs/quality/$name
  echo "== $name $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  { .venv/bin/vqspeech train-prior -q --run "$run" train.max_minutes="$minutes" &&
    .venv/bin/vqspeech evaluate-prior -q --run "$run"; } > "benchmarks/log-prior-$name.txt" 2>&1
  echo "   exit $? $(date +%T)"
done
echo "== done $(date +%T)"
