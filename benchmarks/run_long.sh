#!/usr/bin/env bash
# Issue 42's long run: the LibriSpeech excerpt's CPU configuration as issue 41 leaves it (the parallel decoder,
# hop 320, the perturbation bank and the pitch stream), resumed segment by segment. It continues
# runs/quality/combo-60, whose 60 CPU minutes are the first hour (its minutes-060.0.pt).
#   bash benchmarks/run_long.sh MINUTES      # one segment of MINUTES; appends its line to benchmarks/long-run.csv
# Each segment's start, end, steps, load and machine go to benchmarks/long-run.csv; the log to
# runs/long/segment-N.log. The trainer keeps checkpoints/hours-H.pt at 1, 2, 4 and 8 training hours, counted
# over every segment (the checkpoint's minutes_trained; set here from the CSV for checkpoints written before
# it was stored). After each segment last.pt (weights + optimiser, 50 MB) and config.yaml are copied to
# benchmarks/long-run/ and committed: on a fresh machine the next segment resumes from them.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?minutes of this segment}
run=runs/long/librispeech
saved=benchmarks/long-run   # the committed stopping point: weights + optimiser (last.pt) and the run's config
if [ ! -d "$run" ] && [ -f "$saved/last.pt" ]; then   # a fresh machine: resume from the committed checkpoint
  mkdir -p "$run/checkpoints"
  cp "$saved/last.pt" "$run/checkpoints/last.pt"
  cp "$saved/config.yaml" "$run/config.yaml"
elif [ ! -d "$run" ]; then
  mkdir -p runs/long
  cp -al runs/quality/combo-60 "$run"   # hard links: the trainer replaces files, never writes into them
fi
# the model's settings are configs/pretrained/librispeech.yaml's (what init_from=librispeech fine-tunes with):
# composed, they equal the overrides segments 1 and 2 ran with (model=demo decoder=parallel bottleneck=vq, K 256,
# dead codes after 50 steps, no pre-emphasis, strides 5,4,2,2,2,2, 4 perturbation variants, 32 pitch levels,
# batch 8 × 16000 samples)
overrides=(+pretrained=librispeech data.root=data/librispeech-excerpt train=cpu train.lr=1e-3 train.num_workers=1
  train.audio_every=null "train.keep_hours=[1,2,4,8]")
csv=benchmarks/long-run.csv
header="segment,start,end,minutes,step_before,step_after,load_start,load_end,steps_per_second,machine"
[ -f "$csv" ] || echo "$header" > "$csv"
n=$(( $(wc -l < "$csv") ))   # the header plus one line per segment so far: this segment's number
done_minutes=$(awk -F, 'NR > 1 { s += $4 } END { print 60 + s }' "$csv")   # combo-60's hour + the segments
.venv/bin/python - "$run/checkpoints/last.pt" "$done_minutes" <<'PY'
import sys
from vqspeech.checkpoint import load_checkpoint, save_checkpoint
path, minutes = sys.argv[1], float(sys.argv[2])
payload = load_checkpoint(path)
if not payload.get("minutes_trained"):   # written before checkpoints counted their minutes
    payload["minutes_trained"] = minutes
    save_checkpoint(path, payload)   # whole or not at all (a new file: step-*.pt links keep the old one)
    print(f"{path}: minutes_trained set to {minutes:g} (from benchmarks/long-run.csv)")
PY
step() { .venv/bin/python -c "import torch; print(torch.load('$run/checkpoints/last.pt', map_location='cpu', weights_only=True)['step'])"; }
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -1) × $(nproc)"
before=$(step); start=$(date -u +%FT%T); load0=$(cut -d' ' -f1 /proc/loadavg)
.venv/bin/vqspeech train recipes/librispeech "${overrides[@]}" run_dir="$run" train.max_minutes="$minutes" \
  > "runs/long/segment-$n.log" 2>&1
after=$(step)
rate=$(awk -v a="$after" -v b="$before" -v m="$minutes" 'BEGIN { printf "%.2f", (a - b) / (60 * m) }')
echo "$n,$start,$(date -u +%FT%T),$minutes,$before,$after,$load0,$(cut -d' ' -f1 /proc/loadavg),$rate,$machine" >> "$csv"
mkdir -p "$saved"   # commit these two files after each segment, so that the run survives a new machine
cp "$run/checkpoints/last.pt" "$saved/last.pt"
cp "$run/config.yaml" "$saved/config.yaml"
