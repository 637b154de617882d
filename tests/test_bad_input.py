"""Bad input to every command that reads user files: seven kinds of file × the commands, one table.

The kinds: empty, NaN samples, a corrupt header, text renamed .wav, stereo 48 kHz, 10 samples, a silent file.

* Corpus commands get a folder (or manifest) holding one bad file among good ones: ``prepare vctk``,
  ``prepare librispeech``, ``align``, ``evaluate-reconstruction``, ``evaluate-conversion`` and
  ``extract-codes`` (what ``train-prior`` reads). They exit 0, warn in one line naming the bad file and leave
  it out, and process the good ones.
* File commands get the bad file itself: ``sample --prompt``, ``compress``, ``convert --reference`` and
  ``decompress`` (the file named .vqs). They exit 2 with one ``error:`` line naming it.
* ``probe-phonemes`` gets a TextGrid that does not parse, and one whose phones run past the audio.

Stereo 48 kHz is usable everywhere (it is mixed down and resampled). A silent file and 10 samples may be
processed or refused, but when refused it is by name. Nothing ends in a traceback, and no file the user made
is changed. ``prepare demo`` reads no user audio (it synthesises its corpus), so it has no row here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqspeech.cli import main

SR = 16000
KINDS = ("empty", "nan", "corrupt_header", "text", "stereo48k", "ten_samples", "silent")
USABLE = {"stereo48k"}                  # must be processed
EITHER = {"silent", "ten_samples"}      # processed, or left out / refused by name
SPEAKERS = ("spk_a", "spk_b", "spk_c")
OUTCOMES: dict[tuple[str, str], str] = {}


def speech_like(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
            + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def write_kind(path: Path, kind: str) -> None:
    """A file of ``kind`` at ``path``; the content is WAV whatever the name (soundfile reads by content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "nan":
        wav = speech_like(1.0)
        wav[1000:1100] = np.nan
        sf.write(str(path), wav, SR, subtype="FLOAT", format="WAV")
    elif kind == "corrupt_header":
        sf.write(str(path), speech_like(1.0), SR, subtype="PCM_16", format="WAV")
        data = bytearray(path.read_bytes())
        data[8:16] = b"XXXXXXXX"  # "WAVEfmt " damaged
        path.write_bytes(bytes(data))
    elif kind == "text":
        path.write_text("this is not audio\n")
    elif kind == "stereo48k":
        wav = np.stack([speech_like(1.0, 48000), speech_like(1.0, 48000, 1)], axis=1)
        sf.write(str(path), wav, 48000, subtype="PCM_16", format="WAV")
    elif kind == "ten_samples":
        sf.write(str(path), speech_like(1.0)[:10], SR, subtype="PCM_16", format="WAV")
    elif kind == "silent":
        sf.write(str(path), np.zeros(SR, np.float32), SR, subtype="PCM_16", format="WAV")
    else:
        raise AssertionError(kind)


def digest(folder: Path) -> dict[str, str]:
    """Every file under folder -> its sha256: what the user made, to check nothing was changed."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def corpus_outcome(command: str, kind: str, code: int, err: str, bad: Path, caplog) -> list[str]:
    """Checks a corpus command's outcome; returns the warnings naming the bad file."""
    assert "Traceback" not in err, err
    assert code == 0, err
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and bad.name in r.getMessage()]
    assert all("\n" not in w for w in warned), warned
    OUTCOMES[(kind, command)] = f"exit {code}" + (", warned, left out" if warned else ", used")
    if kind in USABLE:
        assert not warned, warned
    elif kind not in EITHER:
        assert len(warned) == 1, (warned, caplog.text)
    return warned


def file_outcome(command: str, kind: str, code: int, err: str, bad: Path) -> None:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    OUTCOMES[(kind, command)] = f"exit {code}" + (", one-line error" if errors else "")
    if kind in USABLE or (kind in EITHER and code == 0):
        assert code == 0 and not errors, err
    else:
        assert code == 2, err
        assert len(errors) == 1 and bad.name in errors[0], err


# ---- corpus commands ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_prepare_vctk_and_librispeech_leave_a_bad_file_out(kind, tmp_path, capsys, caplog):
    vctk = tmp_path / "VCTK-Corpus"
    (vctk / "wav48" / "p225").mkdir(parents=True)
    (vctk / "txt" / "p225").mkdir(parents=True)
    for n in ("001", "002", "003"):
        sf.write(str(vctk / "wav48" / "p225" / f"p225_{n}.wav"), speech_like(1.0, 48000, int(n)), 48000,
                 subtype="PCM_16")
        (vctk / "txt" / "p225" / f"p225_{n}.txt").write_text(f"sentence {n}.\n")
    bad_vctk = vctk / "wav48" / "p225" / "p225_003.wav"
    write_kind(bad_vctk, kind)
    libri = tmp_path / "LibriSpeech" / "train-clean-100"
    chapter = libri / "19" / "198"
    chapter.mkdir(parents=True)
    for n in range(3):
        sf.write(str(chapter / f"19-198-000{n}.flac"), speech_like(1.0, 16000, n), 16000)
    (chapter / "19-198.trans.txt").write_text("".join(f"19-198-000{n} WORDS NUMBER {n}\n" for n in range(3)))
    bad_libri = chapter / "19-198-0002.flac"
    write_kind(bad_libri, kind)
    for command, root, bad in (("prepare vctk", vctk, bad_vctk), ("prepare librispeech", libri, bad_libri)):
        before = digest(root)
        caplog.clear()
        caplog.set_level(logging.WARNING, logger="vqspeech")
        out = tmp_path / command.replace(" ", "-")
        code = main([*command.split(), "--root", str(root), "--out", str(out), "--valid", "0", "--test", "0",
                     "--workers", "1", "-q"])
        warned = corpus_outcome(command, kind, code, capsys.readouterr().err, bad, caplog)
        rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
        assert len(rows) == 3 - bool(warned)
        assert digest(root) == before


def corpus_with(tiny_corpus: Path, tmp_path: Path, kind: str, split: str | None = None) -> tuple[Path, Path]:
    """A copy of the tiny corpus with one bad file of spk_a; returns (root, bad file). With ``split`` the bad
    file is an extra utterance of that split; without, it replaces spk_a's test utterance u5 (a sentence every
    voice reads, so the evaluations pick it)."""
    root = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, root)
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    rows = [{**r, "text": "a small test sentence"} for r in rows]
    if split is None:
        bad = root / "spk_a" / "u5.wav"
        write_kind(bad, kind)
    else:
        bad = root / "spk_a" / f"bad_{kind}.wav"
        write_kind(bad, kind)
        rows.append({"path": f"spk_a/{bad.name}", "speaker": "spk_a", "utterance": bad.stem, "split": split,
                     "text": "a small test sentence"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root, bad


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["evaluate-reconstruction", "evaluate-conversion"])
def test_evaluations_leave_a_bad_test_file_out(command, kind, trained_run, tiny_corpus, tmp_path, capsys, caplog):
    root, bad = corpus_with(tiny_corpus, tmp_path, kind)
    before = digest(root)
    caplog.set_level(logging.WARNING, logger="vqspeech")
    out = tmp_path / "out"
    options = ["--no-dnsmos"] if command == "evaluate-reconstruction" else ["--sentences", "1"]
    code = main([command, "--run", str(trained_run), "--data-root", str(root), "--out", str(out), "--seconds",
                 "0.3", *options, "-q"])
    warned = corpus_outcome(command, kind, code, capsys.readouterr().err, bad, caplog)
    # the good test files were scored, and the bad one only when it was usable
    if command == "evaluate-reconstruction":
        scored = {(r["speaker"], r["utterance"]) for r in json.loads((out / "reconstruction.json").read_text())["rows"]}
    else:
        scored = {(u["source"], u["sentence"]) for u in json.loads((out / "conversion.json").read_text())["utterances"]}
    assert {("spk_b", "u5"), ("spk_c", "u5")} <= scored
    assert (("spk_a", "u5") in scored) == (not warned)
    assert digest(root) == before


@pytest.mark.parametrize("kind", KINDS)
def test_extract_codes_for_train_prior_leaves_a_bad_file_out(kind, trained_run, tiny_corpus, tmp_path, capsys,
                                                            caplog):
    from vqspeech.codes import load_codes

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("codes", "prior"))
    root, bad = corpus_with(tiny_corpus, tmp_path, kind, split="train")
    before = digest(root)
    caplog.set_level(logging.WARNING, logger="vqspeech")
    code = main(["extract-codes", "--run", str(run), "--data-root", str(root), "-q"])
    warned = corpus_outcome("extract-codes (train-prior)", kind, code, capsys.readouterr().err, bad, caplog)
    (folder,) = (run / "codes").iterdir()
    utterances = load_codes(folder, "train").utterances
    assert (f"spk_a/{bad.stem}" in utterances) == (not warned)
    assert len(utterances) == 12 + (not warned)  # the tiny corpus's 12 training utterances, all kept
    assert digest(root) == before


@pytest.mark.parametrize("kind", KINDS)
def test_align_leaves_a_bad_file_out(kind, flite_corpus, tmp_path, capsys, caplog):
    root = tmp_path / "corpus"
    shutil.copytree(flite_corpus, root)
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    bad = root / "slt" / f"bad_{kind}.wav"
    if kind == "stereo48k":  # real (flite) speech this time: a tone has no words to align
        import librosa

        wav, sr = sf.read(str(root / rows[0]["path"]), dtype="float32")
        wav = librosa.resample(wav, orig_sr=sr, target_sr=48000)
        sf.write(str(bad), np.stack([wav, wav], axis=1), 48000, subtype="PCM_16")
    else:
        write_kind(bad, kind)
    rows.append({**rows[0], "path": f"slt/{bad.name}", "utterance": bad.stem})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = digest(root)
    caplog.set_level(logging.WARNING, logger="vqspeech")
    out = tmp_path / "aligned"
    code = main(["align", "--data-root", str(root), "--out", str(out), "-q"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and bad.name in r.getMessage()]
    # align exits 2 when a file could not be aligned, after aligning the rest and saying which failed
    OUTCOMES[(kind, "align")] = f"exit {code}" + (", warned, left out" if warned else ", aligned")
    grids = {p.stem for p in out.rglob("*.TextGrid")}
    assert {r["utterance"] for r in rows[:-1]} <= grids  # the good files are aligned
    if kind in USABLE:
        assert code == 0 and not warned and bad.stem in grids, caplog.text
    else:
        assert len(warned) == 1 and "\n" not in warned[0], caplog.text
        assert code == 2 and "1 failed" in captured.out and bad.stem not in grids, captured.out
    assert digest(root) == before


# ---- file commands ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_file_commands_refuse_a_bad_file_by_name(kind, prior_run, reference_run, tiny_corpus, tmp_path,
                                                 capsys):
    good = sorted(tiny_corpus.glob("spk_a/*.wav"))[-1]
    bad = tmp_path / "in" / f"{kind}.wav"
    write_kind(bad, kind)
    vqs = tmp_path / "in" / f"{kind}.vqs"
    shutil.copyfile(bad, vqs)
    before = digest(tmp_path / "in")
    run = str(prior_run)
    cases = {
        "sample --prompt": ["sample", "--run", run, "--speaker", "spk_a", "--seconds", "0.2", "-n", "1",
                            "--prompt", str(bad), "--prompt-seconds", "0.1", "-o", str(tmp_path / "s")],
        "compress": ["compress", "--run", run, str(bad), "-o", str(tmp_path / "c.vqs")],
        "convert --reference": ["convert", str(good), "--reference", str(bad), "--run", str(reference_run),
                                "-o", str(tmp_path / "r")],
        "decompress": ["decompress", "--run", run, str(vqs), "-o", str(tmp_path / "d.wav")],
    }
    for command, argv in cases.items():
        code = main([*argv, "-q"])
        name = vqs if command == "decompress" else bad
        if command == "decompress":  # audio is never a .vqs file, whatever its kind
            err = capsys.readouterr().err
            assert "Traceback" not in err and code == 2, err
            assert [line for line in err.splitlines() if line.startswith("error:")][0].count(name.name) == 1, err
            OUTCOMES[(kind, command)] = f"exit {code}, one-line error"
        else:
            file_outcome(command, kind, code, capsys.readouterr().err, name)
    assert digest(tmp_path / "in") == before


# ---- probe-phonemes: bad alignments --------------------------------------------------------------------------

GOOD_TEXTGRID = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = {end}
tiers? <exists>
size = 1
item []:
    item [1]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = {end}
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = {a}
            text = "s"
        intervals [2]:
            xmin = {a}
            xmax = {b}
            text = "ah"
        intervals [3]:
            xmin = {b}
            xmax = {end}
            text = "m"
"""


@pytest.mark.parametrize("fault", ["does_not_parse", "runs_past_the_audio"])
def test_probe_phonemes_with_a_bad_textgrid(fault, trained_run, tiny_corpus, tmp_path, capsys, caplog):
    root = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, root)
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    for r in rows:
        wav = root / r["path"]
        end = sf.info(str(wav)).duration
        grid = wav.with_suffix(".TextGrid")
        grid.write_text(GOOD_TEXTGRID.format(end=end, a=end / 3, b=2 * end / 3))
        r["alignment"] = str(grid.relative_to(root))
    bad = root / "spk_a" / "u5.TextGrid"
    if fault == "does_not_parse":
        bad.write_text("this is not a TextGrid\n")
    else:
        bad.write_text(GOOD_TEXTGRID.format(end=30.0, a=10.0, b=20.0))
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = digest(root)
    caplog.set_level(logging.WARNING, logger="vqspeech")
    code = main(["probe-phonemes", "--run", str(trained_run), "--data-root", str(root), "--out",
                 str(tmp_path / "probe"), "--split", "test", "-q"])
    err = capsys.readouterr().err
    assert "Traceback" not in err and code == 0, err
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and bad.name in r.getMessage()]
    OUTCOMES[(fault, "probe-phonemes")] = f"exit {code}" + (", warned, left out" if warned else ", used")
    assert len(warned) == 1 and "\n" not in warned[0], caplog.text
    report = json.loads((tmp_path / "probe" / "probe.json").read_text())
    assert report["n_utterances"] == 2  # spk_b and spk_c's test utterances
    assert digest(root) == before


@pytest.fixture(scope="module", autouse=True)
def _outcome_table(outcome_tables):
    """The kind × command -> outcome table of the cases that ran, in the terminal summary (conftest)."""
    yield
    if not OUTCOMES:
        return
    commands = list(dict.fromkeys(c for _, c in OUTCOMES))
    kinds = list(dict.fromkeys(k for k, _ in OUTCOMES))
    lines = ["kind | " + " | ".join(commands)]
    lines += [f"{k} | " + " | ".join(OUTCOMES.get((k, c), "-") for c in commands) for k in kinds]
    outcome_tables["bad input: kind × command"] = lines
