"""SIGKILL at any moment leaves the last checkpoint intact, and the run resumes from it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from vqspeech.training import train
from vqspeech.checkpoint import load_checkpoint

INTERVAL = 3


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigkill_mid_run_then_resume(demo_recipe, tiny_corpus, tiny_overrides, tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.pt"
    overrides = tiny_overrides(tiny_corpus, run_dir, "train.max_steps=100000", f"train.checkpoint_every={INTERVAL}",
                               "train.valid_every=100000", "train.audio_every=null", "train.log_every=1000")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    seen = []
    for delay in (0.7, 0.35, 1.1):  # kill at different moments, some of them mid-save
        proc = subprocess.Popen([sys.executable, "-m", "vqspeech", "train", str(demo_recipe), *overrides, "-q"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        start = load_checkpoint(last)["step"] if last.exists() else 0
        while time.monotonic() < deadline and not (last.exists() and load_checkpoint(last)["step"] > start):
            time.sleep(0.05)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        step = load_checkpoint(last)["step"]  # loads: the kill never leaves a half-written checkpoint
        assert step % INTERVAL == 0 and step > start
        seen.append(step)
    assert seen == sorted(seen)
    resumed = train(tiny_config(f"train.max_steps={seen[-1] + INTERVAL}", f"train.checkpoint_every={INTERVAL}",
                                run_dir=run_dir), progress=False)
    print(f"\nkilled at checkpointed steps {seen}; resumed from {resumed.resumed_from} to {resumed.step}, "
          f"loss {resumed.train_losses}")  # pytest -s shows it
    assert resumed.resumed_from == seen[-1]  # work lost: the steps after the last checkpoint, < INTERVAL
    assert resumed.step == seen[-1] + INTERVAL
