#!/usr/bin/env bash
# Issue 42's fine-tuning comparison on the VCTK excerpt (4 speakers, 20 training utterances): 15 CPU minutes
# from the shipped librispeech model (init_from=librispeech) against 15 minutes from scratch with the same
# model and training settings (+pretrained=librispeech brings them without the weights). One run at a time.
#   bash benchmarks/run_finetune.sh            # after `python tools/vctk_mini_manifest.py ... data/vctk-mini/manifest.jsonl`
# Each run is scored by `vqspeech report`, `evaluate-reconstruction` (the 16 test utterances, beside Codec2) and
# `evaluate-conversion` (every voice to every voice on 2 sentences); logs in runs/finetune/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
common=(data.root=data/vctk-mini train=cpu train.lr=1e-3 train.num_workers=1 train.max_minutes=15
  train.audio_every=null)
for name in tuned scratch; do
  run=runs/finetune/$name
  if [ "$name" = tuned ]; then start=(init_from=librispeech); else start=(+pretrained=librispeech); fi
  echo "$name: $(date -u +%FT%T) load $(cut -d' ' -f1 /proc/loadavg)"
  .venv/bin/vqspeech train recipes/vctk "${start[@]}" "${common[@]}" run_dir="$run" > "runs/finetune/$name-train.log" 2>&1
  echo "$name: trained $(date -u +%FT%T) load $(cut -d' ' -f1 /proc/loadavg)"
done
for name in tuned scratch; do
  run=runs/finetune/$name
  .venv/bin/vqspeech report --run "$run" -q > "runs/finetune/$name-report.log" 2>&1
  .venv/bin/vqspeech evaluate-reconstruction --run "$run" -q > "runs/finetune/$name-recon.log" 2>&1
  .venv/bin/vqspeech evaluate-conversion --run "$run" --sentences 2 -q > "runs/finetune/$name-conv.log" 2>&1
  echo "$name: scored $(date -u +%FT%T)"
done
