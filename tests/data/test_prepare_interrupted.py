"""A prepare killed halfway leaves no truncated wav and no manifest; a re-run continues where it stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

N_FILES = 60


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_killed_prepare_leaves_whole_files_and_a_rerun_continues(tmp_path):
    root = tmp_path / "VCTK-Corpus"
    rng = np.random.default_rng(0)
    for n in range(1, N_FILES + 1):
        speaker = f"p{225 + n % 2}"
        (root / "wav48" / speaker).mkdir(parents=True, exist_ok=True)
        (root / "txt" / speaker).mkdir(parents=True, exist_ok=True)
        wav = (0.2 * np.sin(np.arange(96000) * 0.05 * (1 + n / 10)) + 0.01 * rng.standard_normal(96000))
        sf.write(str(root / "wav48" / speaker / f"{speaker}_{n:03d}.wav"), wav.astype(np.float32), 48000,
                 subtype="PCM_16")
        (root / "txt" / speaker / f"{speaker}_{n:03d}.txt").write_text(f"sentence number {n}.\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "vqspeech", "prepare", "vctk", "--root", str(root), "--out", str(out),
               "--valid", "1", "--test", "1", "--workers", "1", "-q"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.glob("p*/*.wav"))) < N_FILES // 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    made = sorted(out.glob("p*/*.wav"))
    assert N_FILES // 3 <= len(made) < N_FILES, len(made)  # killed halfway
    assert not (out / "manifest.jsonl").exists()  # the manifest is written last
    for path in made:  # every file under its final name is whole: 2 s at 16 kHz
        assert sf.info(str(path)).frames == 32000, path
    done = subprocess.run(command[:-1], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{N_FILES - len(made)} made, {len(made)} reused" in done.stdout, done.stdout
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == N_FILES
    assert not list(out.rglob("*.tmp"))  # the killed run's temp file is gone
