"""Write a manifest for the VCTK excerpt (shared/data/vctk-mini) that splits by sentence, so held-out
sentences are spoken by every speaker (parallel test set), pointing at the files in place. This is the split
the README's VCTK-excerpt figures used; `vqspeech prepare vctk` makes a comparable split of its own (and a
resampled, trimmed copy).

    python tools/vctk_mini_manifest.py ../shared/data/vctk-mini /tmp/vctk-mini-manifest/manifest.jsonl

Sentences 021-024 (read by all four speakers) are test, 019 is validation, the rest train.
"""

import json
import sys
from pathlib import Path

TEST, VALID = {"021", "022", "023", "024"}, {"019"}


def main(root: str, manifest: str) -> None:
    wavs = sorted((Path(root) / "wav16").resolve().glob("p*/p*_*.wav"))
    if not wavs:
        sys.exit(f"error: no wav16/pXXX/pXXX_NNN.wav under {root}")
    out = Path(manifest)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        for wav in wavs:
            speaker, sentence = wav.stem.split("_", 1)
            split = "test" if sentence in TEST else "valid" if sentence in VALID else "train"
            f.write(json.dumps({"path": str(wav), "speaker": speaker, "utterance": sentence, "split": split}) + "\n")
    print(f"{out}: {len(wavs)} utterances")


if __name__ == "__main__":
    main(*sys.argv[1:3])
