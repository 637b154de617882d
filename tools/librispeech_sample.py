"""Commit-sized sample of unseen-voice conversion: one held-out reader's speech in another held-out reader's voice.

    python tools/librispeech_sample.py --unseen runs/librispeech-cpu/unseen --out recipes/librispeech/samples

Reads the report of ``vqspeech evaluate-conversion --unseen`` (unseen.json and its wavs). The pair is not chosen
by its scores: it is the first conversion (in the report's order) whose source and target readers differ in
gender (SPEAKERS.TXT through the prepared manifest), so the voice change is audible. Writes source.wav (the A
piece that was converted), reference.wav (the target's B piece, the only audio of that voice the model got),
converted.wav, spectrograms.png (the three, one panel each) and README.md with the pair's figures beside the
report's means.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unseen", required=True, help="the folder evaluate-conversion --unseen wrote")
    parser.add_argument("--data-root", default="data/librispeech-excerpt", help="the prepared corpus")
    parser.add_argument("--out", default="recipes/librispeech/samples")
    args = parser.parse_args()

    from vqspeech.data.audio import load_audio, save_audio
    from vqspeech.data.corpus import load_corpus
    from vqspeech.plots import save_spectrograms
    from vqspeech.eval.unseen import heldout_pieces

    unseen, out = Path(args.unseen), Path(args.out)
    report = json.loads((unseen / "unseen.json").read_text())
    manifest = [json.loads(line) for line in (Path(args.data_root) / "manifest.jsonl").read_text().splitlines()]
    gender = {row["speaker"]: row.get("gender") for row in manifest}
    pair = next(o for o in report["outputs"] if o["source"] != o["target"]
                and gender.get(o["source"]) != gender.get(o["target"]))
    corpus = load_corpus(args.data_root, "manifest.jsonl")
    pieces = {speaker: (a, b) for speaker, a, b in heldout_pieces(corpus)}
    sr = 16000
    seconds = report["seconds"]
    source = pieces[pair["source"]][0].cut(load_audio(pieces[pair["source"]][0].path, sr), sr)[: int(seconds * sr)]
    reference = pieces[pair["target"]][1].cut(load_audio(pieces[pair["target"]][1].path, sr), sr)
    reference = reference[: int(report["reference_seconds"] * sr)]
    converted = load_audio(unseen / pair["wav"], sr)
    out.mkdir(parents=True, exist_ok=True)
    for name, wav in (("source", source), ("reference", reference), ("converted", converted)):
        save_audio(out / f"{name}.wav", wav, sr, overwrite=True)
    save_spectrograms(out / "spectrograms.png",
                      [(f"source: reader {pair['source']} ({gender[pair['source']]}), held out", source),
                       (f"reference: reader {pair['target']} ({gender[pair['target']]}), held out", reference),
                       (f"converted: {pair['source']}'s words in {pair['target']}'s voice", converted)], sr)
    c = report["converted"]
    (out / "README.md").write_text(f"""# Unseen voice to unseen voice

LibriSpeech readers {pair['source']} ({gender[pair['source']]}) and {pair['target']} ({gender[pair['target']]}) were
held out of training. `source.wav` ({len(source) / sr:.1f} s, the first half of {pair['source']}'s utterance) is
spoken in the voice of `reference.wav` ({len(reference) / sr:.1f} s, the second half of {pair['target']}'s, the only
audio of that voice the model was given): `converted.wav`. Spectrograms: `spectrograms.png`.

Made by `python tools/librispeech_sample.py --unseen {unseen}` from the report of
`vqspeech evaluate-conversion --unseen` (the pair is the report's first with readers of different gender, not
picked by its scores).

| | this pair | mean over the report's {c['outputs']} conversions |
|---|---|---|
| identified as the target (Resemblyzer, among {len(report['speakers'])} held-out voices) | {pair['identified'] == pair['target']} (nearest: {pair['identified']}) | {c['identified_as_target']:.3f} |
| identified as the target (speaker classifier) | {pair['predicted'] == pair['target']} (predicted: {pair['predicted']}) | {c['classified_as_target']:.3f} |
| Resemblyzer cosine to the target's real voice | {pair['cosine_target']:.3f} | {c['cosine_target']:.3f} |
| Resemblyzer cosine to the source's real voice | {pair['cosine_source']:.3f} | {c['cosine_source']:.3f} |

Audio: from LibriSpeech train-clean-100 (Panayotov et al., 2015, "LibriSpeech: an ASR corpus based on public
domain audio books"; openslr.org resource 12), licensed CC BY 4.0; the source and reference are cut from it,
the conversion is derived from them. The excerpt came through the Resemblyzer repository's
audio_data/librispeech_train-clean-100/ folder.
""")
    print(f"wrote {out}: {pair['source']} -> {pair['target']}")


if __name__ == "__main__":
    main()
