#!/usr/bin/env bash
# One training at a time: pops the first line of runs/queue.txt ("NAME OVERRIDE ..." or "--raw NAME COMMAND ..."),
# runs it through the quality harness (10 CPU minutes, scored at 10) into benchmarks/levers.csv, and waits
# for more lines; a line "END" stops it. Lines can be appended while it runs.
set -u
cd "$(dirname "$0")/.."
queue=runs/queue.txt
mkdir -p runs && touch "$queue"
while true; do
  line=$(head -n 1 "$queue")
  if [ -z "$line" ]; then sleep 15; continue; fi
  sed -i 1d "$queue"
  [ "$line" = END ] && break
  set -- $line
  echo "== $* $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  if [ "$1" = --raw ]; then
    name=$2; shift 2; cmd=("$@")
  else
    name=$1; shift
    cmd=(.venv/bin/python tools/bench_quality.py --name "$name" --minutes 10 --every 10
         --csv benchmarks/levers.csv --png benchmarks/levers.png "$@")
  fi
  "${cmd[@]}" > "benchmarks/log-$name.txt" 2>&1
  echo "   exit $? $(date +%T)"
done
echo "== done $(date +%T)"
