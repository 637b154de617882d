"""Bad and unusual audio through convert, reconstruct, train and probe-phonemes: kinds × commands, one table.

Each kind of input file (empty, header only, silent, NaN, inf, stereo, 8/24-bit, float, 8/48 kHz,
truncated header, text, 10 minutes) goes through ``vqspeech convert``, ``vqspeech reconstruct`` (in-process,
on one tiny run trained per module), ``vqspeech train`` (as an extra utterance of a small corpus) and
``vqspeech probe-phonemes`` (as an extra aligned test utterance: unusable audio is left out with a warning
naming it, and the rest is probed) and ``vqspeech prepare vctk`` (as one utterance of a VCTK 0.80 tree:
unusable or silent audio is named in a warning, counted and left out of the manifest).
Usable audio gives exit 0 and a 16 kHz mono output of the input's duration; unusable audio gives exit 2,
one ``error:`` line naming the file, no traceback, and nothing (not even a temp file) in the output folder.
Training skips unusable files with a warning naming them and trains on the rest. With ``-s`` or ``-v`` the
terminal summary shows the outcome table of the cases that ran.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqspeech.cli import main

MODEL_RATE = 16000
SPEAKERS = ("spk_a", "spk_b", "spk_c")
TINY_FILES = 18  # tiny_corpus: 3 speakers × 6 utterances


def speech_like(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
            + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def _write(path: Path, kind: str) -> tuple[int, int] | None:
    """Write a file of ``kind`` at ``path``; returns (frames, sample rate) for usable audio, else None."""
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "zero_length":
        sf.write(str(path), np.zeros(0, np.float32), MODEL_RATE, subtype="PCM_16")
    elif kind == "all_zeros":
        sf.write(str(path), np.zeros(MODEL_RATE, np.float32), MODEL_RATE, subtype="PCM_16")
        return MODEL_RATE, MODEL_RATE
    elif kind in ("nan", "inf"):
        wav = speech_like(0.5, MODEL_RATE)
        wav[1000:1010] = np.nan if kind == "nan" else np.inf
        sf.write(str(path), wav, MODEL_RATE, subtype="FLOAT")
    elif kind == "stereo16":
        wav = np.stack([speech_like(0.5, MODEL_RATE), speech_like(0.5, MODEL_RATE, 1)], axis=1)
        sf.write(str(path), wav, MODEL_RATE, subtype="PCM_16")
        return len(wav), MODEL_RATE
    elif kind in ("pcm_u8", "pcm24", "float32"):
        subtype = {"pcm_u8": "PCM_U8", "pcm24": "PCM_24", "float32": "FLOAT"}[kind]
        wav = speech_like(0.5, MODEL_RATE)
        sf.write(str(path), wav, MODEL_RATE, subtype=subtype)
        return len(wav), MODEL_RATE
    elif kind in ("rate8k", "rate48k"):
        sr = 8000 if kind == "rate8k" else 48000
        wav = speech_like(0.5, sr)
        sf.write(str(path), wav, sr, subtype="PCM_16")
        return len(wav), sr
    elif kind == "truncated":
        full = path.with_name(f"full_{path.name}")
        sf.write(str(full), speech_like(0.5, MODEL_RATE), MODEL_RATE, subtype="PCM_16")
        path.write_bytes(full.read_bytes()[:20])
        full.unlink()
    elif kind == "text":
        path.write_text("this is not audio\njust a text file named .wav\n")
    elif kind == "long":
        n = 10 * 60 * MODEL_RATE
        wav = (0.01 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
        sf.write(str(path), wav, MODEL_RATE, subtype="PCM_16")
        return n, MODEL_RATE
    else:
        raise AssertionError(kind)
    return None


# kind -> (usable for convert/reconstruct, usable for train and probe-phonemes)
KINDS = {
    "empty": (False, False), "zero_length": (False, False), "all_zeros": (False, True),
    "nan": (False, False), "inf": (False, False), "stereo16": (True, True), "pcm_u8": (True, True),
    "pcm24": (True, True), "float32": (True, True), "rate8k": (True, True), "rate48k": (True, True),
    "truncated": (False, False), "text": (False, False), "long": (True, True),
}
COMMANDS = ("convert", "reconstruct", "train", "probe-phonemes", "prepare vctk")
OUTCOMES: dict[tuple[str, str], str] = {}


def kind_params():
    return [pytest.param(k, marks=pytest.mark.slow) if k == "long" else k for k in KINDS]


def _check_stderr(err: str, name: str, expect_error: bool) -> None:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("using ")]
    assert all(line.startswith("error:") for line in lines), err
    if expect_error:
        assert len(lines) == 1, err
        assert name in lines[0], err
    else:
        assert lines == [], err


def _run_file_command(command, kind, trained_run, tmp_path, capsys):
    src_dir = tmp_path / "in"
    src_dir.mkdir()
    src = src_dir / f"{kind}.wav"
    usable_info = _write(src, kind)
    usable = KINDS[kind][0]
    out = tmp_path / "out"
    capsys.readouterr()
    code = main([command, str(src), "--speaker", "spk_a", "--run", str(trained_run), "-o", str(out), "--seed", "0",
                 "-q"])
    err = capsys.readouterr().err
    first_error = next((line for line in err.splitlines() if line.startswith("error:")), "")
    OUTCOMES[(kind, command)] = f"exit {code}" + (f" ({_reason(first_error, src)})" if first_error else "")
    _check_stderr(err, src.name, expect_error=not usable)
    if usable:
        assert code == 0, err
        suffix = "_to_spk_a" if command == "convert" else "_reconstructed"
        written = out / f"{kind}{suffix}.wav"
        info = sf.info(str(written))
        assert (info.samplerate, info.channels) == (MODEL_RATE, 1)
        frames, sr = usable_info
        OUTCOMES[(kind, command)] += f" ({info.frames} frames, {info.samplerate} Hz mono)"
        assert abs(info.frames - frames * MODEL_RATE / sr) <= 1, (info.frames, frames, sr)
        assert sorted(p.name for p in out.iterdir()) == [written.name]  # no temp files, nothing else
    else:
        assert code == 2, err
        assert not out.exists() or list(out.iterdir()) == [], list(out.iterdir())


def _reason(error_line: str, path: Path) -> str:
    """The error's reason without the path: 'error: /x/y.wav: the audio is silent' -> 'the audio is silent'."""
    reason = error_line.removeprefix(f"error: {path}: ").replace(f"'{path}'", "FILE").replace(str(path), "FILE")
    return reason if len(reason) <= 60 else reason[:57] + "..."


@pytest.mark.parametrize("kind", kind_params())
@pytest.mark.parametrize("command", ["convert", "reconstruct"])
def test_file_commands(command, kind, trained_run, tmp_path, capsys):
    _run_file_command(command, kind, trained_run, tmp_path, capsys)


@pytest.mark.parametrize("kind", kind_params())
def test_train_with_one_bad_utterance(kind, demo_recipe, tiny_corpus, tmp_path, capsys, caplog):
    root = tmp_path / "corpus"
    for speaker in SPEAKERS:
        shutil.copytree(tiny_corpus / speaker, root / speaker)
    bad = root / "spk_a" / f"bad_{kind}.wav"
    _write(bad, kind)
    usable = KINDS[kind][1]
    caplog.set_level(logging.INFO, logger="vqspeech")
    capsys.readouterr()
    code = main(["train", str(demo_recipe), "+debug=tiny", f"data.root={root}", "data.manifest=null",
                 "data.valid_fraction=0", "data.test_fraction=0", f"run_dir={tmp_path / 'run'}",
                 "train.device=cpu", "train.audio_every=null", "-q"])
    captured = capsys.readouterr()
    log_text = captured.err + caplog.text
    skipped = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and bad.name in r.getMessage()]
    OUTCOMES[(kind, "train")] = f"exit {code}" + (" (skipped, warned)" if skipped else " (used)")
    assert "Traceback" not in captured.err, captured.err
    assert code == 0, log_text
    assert "error:" not in captured.err
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    n_train = [int(m[1]) for r in caplog.records if (m := re.match(r"train: (\d+) utterances", r.getMessage()))]
    if usable:
        assert not skipped, skipped
        assert n_train == [TINY_FILES + 1], log_text
    else:
        assert len(skipped) == 1 and str(bad) in skipped[0], log_text
        assert "\n" not in skipped[0]
        assert n_train == [TINY_FILES], log_text


def _align(path: Path, seconds: float) -> str:
    """A flite-style .psdur beside path covering [0, seconds): pau, s, ah, m, pau in equal parts."""
    phones = ["pau", "s", "ah", "m", "pau"]
    ends = [seconds * (k + 1) / len(phones) for k in range(len(phones))]
    alignment = path.with_suffix(".psdur")
    alignment.write_text(" ".join(f"{p}:{e:.3f}" for p, e in zip(phones, ends)))
    return alignment.name


@pytest.mark.parametrize("kind", kind_params())
def test_probe_phonemes_with_one_bad_utterance(kind, trained_run, tiny_corpus, tmp_path, capsys, caplog):
    import json

    root = tmp_path / "corpus"
    rows = []
    for speaker in SPEAKERS:
        shutil.copytree(tiny_corpus / speaker, root / speaker)
        for wav in sorted((root / speaker).glob("u*.wav")):
            name = _align(wav, sf.info(str(wav)).duration)
            rows.append({"path": f"{speaker}/{wav.name}", "speaker": speaker, "utterance": wav.stem,
                         "split": "test" if wav.stem in ("u4", "u5") else "train", "alignment": f"{speaker}/{name}"})
    bad = root / "spk_a" / f"bad_{kind}.wav"
    _write(bad, kind)
    rows.append({"path": f"spk_a/{bad.name}", "speaker": "spk_a", "utterance": bad.stem, "split": "test",
                 "alignment": f"spk_a/{_align(bad, 0.5)}"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    usable = KINDS[kind][1]
    caplog.set_level(logging.WARNING, logger="vqspeech")
    capsys.readouterr()
    code = main(["probe-phonemes", "--run", str(trained_run), "--data-root", str(root), "--out",
                 str(tmp_path / "probe"), "--split", "test", "-q"])
    captured = capsys.readouterr()
    warned = [r.getMessage() for r in caplog.records if bad.name in r.getMessage()]
    OUTCOMES[(kind, "probe-phonemes")] = f"exit {code}" + (" (left out, warned)" if warned else " (probed)")
    assert "Traceback" not in captured.err, captured.err
    assert code == 0, captured.err
    report = json.loads((tmp_path / "probe" / "probe.json").read_text())
    assert report["n_utterances"] == 6 + usable
    if usable:
        assert not warned and not report["skipped"], (warned, report["skipped"])
    else:
        assert len(warned) == 1 and "\n" not in warned[0], warned
        assert list(report["skipped"]) == [str(bad.with_suffix(".psdur"))]


@pytest.mark.parametrize("kind", kind_params())
def test_prepare_vctk_with_one_bad_file(kind, tmp_path, capsys, caplog):
    import json

    root = tmp_path / "VCTK-Corpus"
    (root / "wav48" / "p225").mkdir(parents=True)
    (root / "txt" / "p225").mkdir(parents=True)
    sf.write(str(root / "wav48" / "p225" / "p225_001.wav"), speech_like(0.5, 48000), 48000, subtype="PCM_16")
    bad = root / "wav48" / "p225" / "p225_002.wav"
    _write(bad, kind)
    for n in ("001", "002"):
        (root / "txt" / "p225" / f"p225_{n}.txt").write_text(f"sentence {n}.\n")
    usable = KINDS[kind][0]  # prepare leaves silent audio out, as convert does
    caplog.set_level(logging.WARNING, logger="vqspeech")
    capsys.readouterr()
    code = main(["prepare", "vctk", "--root", str(root), "--out", str(tmp_path / "out"), "--valid", "0", "--test",
                 "0", "--workers", "1", "-q"])
    captured = capsys.readouterr()
    warned = [r.getMessage() for r in caplog.records if bad.name in r.getMessage()]
    OUTCOMES[(kind, "prepare vctk")] = f"exit {code}" + (" (left out, warned)" if warned else " (prepared)")
    assert "Traceback" not in captured.err, captured.err
    assert code == 0, captured.err
    rows = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["utterance"] for r in rows) == ["p225_001"] + ["p225_002"] * usable
    if usable:
        assert not warned, warned
        row = next(r for r in rows if r["utterance"] == "p225_002")
        info = sf.info(str(tmp_path / "out" / row["path"]))
        assert (info.samplerate, info.channels) == (MODEL_RATE, 1)
    else:
        assert len(warned) == 1 and "\n" not in warned[0], warned


@pytest.fixture(scope="module", autouse=True)
def _outcome_table(outcome_tables):
    """The kind × command -> outcome table of the cases that ran, shown in the terminal summary (conftest)."""
    yield
    if not OUTCOMES:
        return
    width = max(len(k) for k in KINDS)
    cols = [max(len(c), *(len(OUTCOMES.get((k, c), "-")) for k in KINDS)) for c in COMMANDS]
    lines = [f"{'kind':<{width}} | " + " | ".join(f"{c:<{w}}" for c, w in zip(COMMANDS, cols))]
    lines.append("-" * len(lines[0]))
    for kind in KINDS:
        lines.append(f"{kind:<{width}} | " + " | ".join(f"{OUTCOMES.get((kind, c), '-'):<{w}}"
                                                         for c, w in zip(COMMANDS, cols)))
    outcome_tables["bad audio: kind × command"] = lines
