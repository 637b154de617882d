#!/usr/bin/env bash
# This round's long CPU jobs, one after the other (no two trainings at once), each logged to benchmarks/log-*.txt:
#  1. after the 60-minute harness run (runs/quality/jitter-60): the full reconstruction and conversion
#     evaluations and the probe of its 60-minute checkpoint;
#  2. the bottleneck comparison (recipes/bottlenecks): vq, vae, ae, vae_annealed for the same CPU minutes,
#     each snapshotted every minute, scored by the harness at the end, and its latent usage at every snapshot;
#  3. the VCTK excerpt: the winning settings trained on vctk-mini, then both evaluations.
# Usage: bash benchmarks/run_final.sh  (VQSPEECH_VCTK_MINI: the excerpt, default ../shared/data/vctk-mini)
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BN_MINUTES=${BN_MINUTES:-7}
VCTK_MINUTES=${VCTK_MINUTES:-20}
VCTK_MINI=${VQSPEECH_VCTK_MINI:-../shared/data/vctk-mini}
stamp() { echo "== $* $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"; }
while pgrep -f "bench_quality.py --name jitter-60 " >/dev/null; do sleep 10; done
if [ -z "${SKIP_60:-}" ]; then  # SKIP_60=1: its evaluations are done

ckpt=runs/quality/jitter-60/checkpoints/minutes-060.0.pt
stamp evaluate-reconstruction
$PY -m vqspeech evaluate-reconstruction -q --checkpoint $ckpt --out runs/quality/jitter-60/eval-reconstruction \
    > benchmarks/log-jitter-60-reconstruction.txt 2>&1
stamp evaluate-conversion
$PY -m vqspeech evaluate-conversion -q --checkpoint $ckpt --out runs/quality/jitter-60/eval-conversion \
    > benchmarks/log-jitter-60-conversion.txt 2>&1
stamp probe-phonemes
$PY -m vqspeech probe-phonemes -q --checkpoint $ckpt --out runs/quality/jitter-60/probe \
    > benchmarks/log-jitter-60-probe.txt 2>&1
fi

stamp bottleneck tests
if ! $PY -m pytest -q -x tests/quantization/test_bottlenecks.py tests/eval/test_latent_usage.py \
        tests/eval/test_probing.py tests/test_config.py > benchmarks/log-bottleneck-tests.txt 2>&1; then
    stamp "bottleneck tests FAILED (benchmarks/log-bottleneck-tests.txt); stopping"; exit 1
fi
for variant in vq vae ae vae_annealed; do
    stamp "bottlenecks $variant"
    $PY tools/bench_quality.py --name "bn-$variant" --recipe recipes/bottlenecks --minutes "$BN_MINUTES" --every 1 \
        --at "$BN_MINUTES" --csv benchmarks/bottlenecks.csv --png recipes/bottlenecks/quality.png "variant=$variant" \
        > "benchmarks/log-bn-$variant.txt" 2>&1
done
stamp latent curves
$PY tools/latent_curves.py runs/quality/bn-vq runs/quality/bn-vae runs/quality/bn-ae runs/quality/bn-vae_annealed \
    --csv benchmarks/latent_usage.csv --png recipes/bottlenecks/latent_usage.png \
    --quality-csv benchmarks/bottlenecks.csv > benchmarks/log-latent-curves.txt 2>&1

stamp "vctk-mini train"
mkdir -p runs/vctkm && $PY tools/vctk_mini_manifest.py "$VCTK_MINI" runs/vctkm/manifest.jsonl
$PY -m vqspeech train recipes/demo data.root=runs/vctkm run_dir=runs/vctk-mini-final train.max_minutes="$VCTK_MINUTES" \
    model.jitter=0.12 train.valid_every=500 train.checkpoint_every=500 > benchmarks/log-vctk-mini-train.txt 2>&1
stamp "vctk-mini evaluate-reconstruction"
$PY -m vqspeech evaluate-reconstruction -q --run runs/vctk-mini-final > benchmarks/log-vctk-mini-reconstruction.txt 2>&1
stamp "vctk-mini evaluate-conversion"
$PY -m vqspeech evaluate-conversion -q --run runs/vctk-mini-final > benchmarks/log-vctk-mini-conversion.txt 2>&1
stamp done
