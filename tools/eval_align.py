"""Phone-boundary error of `vqspeech align` (pocketsphinx) against true phone times: the demo corpus's flite
utterances, whose manifest has the text and flite's own phone end times (`-psdur`).

    python tools/eval_align.py [--data-root data/demo] [--per-voice 10] [--all]

Utterances are taken evenly spaced through each voice's list. The two phone sequences (flite's lexicon and
CMUdict's differ in places) are matched by edit distance after mapping both through PhoneSet (lower case,
stress dropped, "pau"/"SIL" -> sil) and flite's schwa "ax" to CMUdict's "ah"; only boundaries with paired
phones on both sides are scored (vqspeech.eval.boundaries.compare_boundaries). Alignment runs in memory:
nothing is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict

import numpy as np

from vqspeech.data.alignments import read_alignment
from vqspeech.data.audio import load_audio
from vqspeech.data.corpus import load_corpus
from vqspeech.data.forced_align import SAMPLE_RATE, Aligner, AlignmentFailed, normalise_transcript
from vqspeech.errors import UserError
from vqspeech.eval.boundaries import compare_boundaries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="data/demo")
    parser.add_argument("--manifest", default="manifest.jsonl")
    parser.add_argument("--per-voice", type=int, default=10, help="utterances per voice (default 10)")
    parser.add_argument("--all", action="store_true", help="every utterance with text and alignment")
    args = parser.parse_args()
    start = time.perf_counter()
    corpus = load_corpus(args.data_root, args.manifest)
    by_voice = defaultdict(list)
    for u in corpus.utterances:
        if u.text and u.alignment is not None:
            by_voice[u.speaker].append(u)
    if not by_voice:
        raise UserError(f"no utterance of {args.data_root}/{args.manifest} has both text and an alignment")
    aligner = Aligner()
    rows, all_errors, totals = [], [], np.zeros(3, dtype=int)
    for voice, utts in sorted(by_voice.items()):
        if not args.all:
            utts = [utts[i] for i in np.linspace(0, len(utts) - 1, min(args.per_voice, len(utts))).round().astype(int)]
        errors, counts, failed = [], np.zeros(3, dtype=int), 0
        for u in utts:
            try:
                hypothesis = aligner.align(load_audio(u.path, SAMPLE_RATE), normalise_transcript(u.text)).phones
            except AlignmentFailed as exc:
                print(f"{u.path}: {exc}", file=sys.stderr)
                failed += 1
                continue
            c = compare_boundaries(read_alignment(u.alignment), hypothesis)
            errors.append(c.errors)
            counts += (c.n_reference, len(c.errors), c.n_substituted)
        e = np.concatenate(errors) * 1000
        rows.append((voice, len(utts) - failed, failed, counts, e))
        all_errors.append(e)
        totals += counts
    rows.append(("all", sum(r[1] for r in rows), sum(r[2] for r in rows), totals, np.concatenate(all_errors)))

    print("| voice | utterances | failed | ref. boundaries | matched | beside a substitution | mean abs error (ms) "
          "| median (ms) | within 20 ms | mean signed (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for voice, n, failed, (n_ref, n_matched, n_sub), e in rows:
        print(f"| {voice} | {n} | {failed} | {n_ref} | {n_matched} ({n_matched / n_ref:.0%}) | {n_sub} "
              f"| {np.abs(e).mean():.1f} | {np.median(np.abs(e)):.1f} | {(np.abs(e) <= 20).mean():.1%} "
              f"| {e.mean():+.1f} |")
    print(f"wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    try:
        main()
    except UserError as exc:
        sys.exit(f"error: {exc}")
