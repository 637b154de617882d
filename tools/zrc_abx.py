"""The probe's ABX figures checked with the field's own scorer (a benchmark, not a test).

    vqspeech probe-phonemes --run runs/demo --export-features --out runs/demo/probe
    python tools/zrc_abx.py runs/demo/probe [--columns model "raw MFCC frames"] [--json out.json]

For each column the probe exported (features/<slug>/<utterance>.npy and features/features.json), prints ABX
error within and across speakers three ways, on the same frames and the same abx.item:

* vqspeech: :mod:`vqspeech.eval.abx` as ``probe-phonemes`` reports it;
* vqspeech, ZeroSpeech conventions: the same scorer with the reference's frame range (it leaves out the last
  frame of each phone) and its across-speaker averaging order (``zerospeech=True``);
* zrc-abx2: ZeroSpeech's reference scorer (PyPI ``zerospeech-libriabx2``, in the bench extra:
  ``LOCK=requirements-bench.lock bash tools/setup.sh``), triphone context ("within"), angular ("cosine")
  DTW, its default group sizes (10 tokens per cell, 5 X speakers across).

Without zrc-abx2 installed, its columns say so and the other two are still printed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from vqspeech.eval.abx import abx_error, read_item_file


def reference_scores(folder: Path, item_file: Path, frame_rate: float) -> dict[str, float] | str:
    """zrc-abx2's within- and across-speaker error (triphone context, angular DTW) on the .npy files of
    ``folder``, or why it could not run."""
    try:
        from zrc_abx2.eval_ABX import EvalABX, EvalArgs
    except ImportError:
        return "zrc-abx2 is not installed (LOCK=requirements-bench.lock bash tools/setup.sh)"
    args = EvalArgs(path_data=str(folder), path_item_file=str(item_file), file_extension=".npy",
                    feature_size=1.0 / frame_rate, speaker_mode="all", context_mode="within",
                    distance_mode="cosine")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # its progress and deprecations
        warnings.simplefilter("ignore")
        results = EvalABX().eval_abx(args)
    return {r["abx-s-condition"]: float(r["score"]) for r in results}


def our_scores(frames: dict[str, np.ndarray], item_file: Path, frame_rate: float,
               zerospeech: bool) -> dict[str, float | None]:
    """vqspeech's within- and across-speaker error on the same frames (utterance -> [F, D])."""
    items = read_item_file(item_file, {file: len(f) for file, f in frames.items()}, frame_rate, zerospeech)
    result = abx_error(items, list(frames.values()), zerospeech=zerospeech)
    return {"within": result.within_speaker, "across": result.across_speaker}


def pair(scores: dict[str, float | None] | str) -> str:
    """'within / across' to 4 places, or the reason a scorer did not run."""
    if isinstance(scores, str):
        return scores
    return " / ".join("–" if scores.get(k) is None else f"{scores[k]:.4f}" for k in ("within", "across"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", type=Path, help="a probe-phonemes --export-features output folder")
    parser.add_argument("--columns", nargs="+", help="columns to score, by name (default: all exported)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    index_path, item_file = args.probe / "features" / "features.json", args.probe / "abx.item"
    if not index_path.exists() or not item_file.exists():
        sys.exit(f"error: {args.probe} has no features/features.json or abx.item; run "
                 f"`vqspeech probe-phonemes --export-features --out {args.probe}` first")
    index = json.loads(index_path.read_text())
    frame_rate, columns = index["frame_rate"], index["columns"]  # slug -> column name
    wanted = args.columns or list(columns.values())
    unknown = sorted(set(wanted) - set(columns.values()))
    if unknown:
        sys.exit(f"error: no exported column {', '.join(unknown)}; the columns are {', '.join(columns.values())}")
    figures = {}
    print(f"{args.probe}: {frame_rate:g} frames/s, {len(item_file.read_text().splitlines()) - 1} items\n")
    print("| column | vqspeech within / across | vqspeech, ZeroSpeech conventions | zrc-abx2 | zrc-abx2 s |")
    print("|---|---|---|---|---|")
    for slug, name in columns.items():
        if name not in wanted:
            continue
        folder = args.probe / "features" / slug
        frames = {p.stem: np.load(p) for p in sorted(folder.glob("*.npy"))}  # read once, scored both ways
        ours = our_scores(frames, item_file, frame_rate, zerospeech=False)
        aligned = our_scores(frames, item_file, frame_rate, zerospeech=True)
        started = time.monotonic()
        reference = reference_scores(folder, item_file, frame_rate)
        seconds = time.monotonic() - started
        figures[name] = {"vqspeech": ours, "vqspeech_zerospeech_conventions": aligned, "zrc_abx2": reference}
        print(f"| {name} | {pair(ours)} | {pair(aligned)} | {pair(reference)} | {seconds:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"probe": str(args.probe), "frame_rate": frame_rate, "figures": figures},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
