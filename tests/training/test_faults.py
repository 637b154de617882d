"""The faults a long run meets: a second writer, a full disk, SIGTERM/SIGINT from a scheduler or a terminal.

* one writer per run directory (training/runlock.py): a second ``train`` gets a one-line error naming the
  holder's pid and host; a lock whose holder was killed does not block; readers take no lock and always load
  a whole checkpoint while saves run;
* a save that fails (ENOSPC at the write, the fsync or the rename) leaves the previous checkpoint intact and no
  temp file, and stops the run with a one-line error naming the folder and the space needed;
* SIGTERM and SIGINT end the step, save, print the summary line and exit 143 / 130; the resumed run loses no
  step and its weights equal an uninterrupted run's bit for bit; a second signal exits at once.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch

from vqspeech.checkpoint import load_checkpoint, save_checkpoint
from vqspeech.cli import main
from vqspeech.errors import UserError
from vqspeech.training import train
from vqspeech.training.runlock import LOCK_NAME, RunLock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX locks and signals")
FP32 = "train.precision=fp32"  # auto times both precisions: a subprocess and this one could choose differently


def _holder(run_dir) -> subprocess.Popen:
    """A child process that takes run_dir's lock and sleeps; returns once it holds it."""
    code = textwrap.dedent(f"""
        import sys, time
        from vqspeech.training.runlock import RunLock
        RunLock({str(run_dir)!r}).acquire()
        print("locked", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_and_a_killed_holder_does_not_block(demo_recipe, tiny_corpus, tiny_overrides,
                                                                     tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", str(demo_recipe), *tiny_overrides(tiny_corpus, run_dir, "train.audio_every=null", FP32), "-q"]
    holder = _holder(run_dir)
    try:
        capsys.readouterr()
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert f"in use by pid {holder.pid} on host {socket.gethostname()}" in err and str(run_dir) in err, err
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]  # the refused run wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert (run_dir / LOCK_NAME).exists()  # the dead holder's lock file is still there, and does not block
    assert main(args) == 0
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 2


def test_the_lock_is_released_when_training_ends_or_fails(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_config(FP32, "train.audio_every=null", run_dir=run_dir), progress=False)
    with pytest.raises(UserError, match="model differs at 'model.bottleneck.codebook_size'"):  # a refused resume
        # (another model) must release the lock too
        train(tiny_config(FP32, "model.bottleneck.codebook_size=8", run_dir=run_dir), progress=False)
    with RunLock(run_dir) as lock:  # free again
        assert lock.held


def test_a_new_run_refused_by_its_config_leaves_no_folder(demo_recipe, tiny_corpus, tiny_overrides, tmp_path,
                                                         capsys):
    run_dir = tmp_path / "fresh"
    assert main(["train", str(demo_recipe), *tiny_overrides(tiny_corpus, run_dir, "model.encoder.channels=-3"),
                 "-q"]) == 2
    assert not run_dir.exists()


def test_readers_load_whole_checkpoints_while_a_writer_saves(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(path, {"step": 0, "model_kwargs": {}, "model": {"w": torch.zeros(1 << 20)}})
    stop = threading.Event()
    saves = []

    def writer():
        step = 0
        while not stop.is_set():
            step += 1
            save_checkpoint(path, {"step": step, "model_kwargs": {},
                                   "model": {"w": torch.full((1 << 20,), float(step))}})
            saves.append(step)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen = []
        deadline = time.monotonic() + 20
        while (len(seen) < 40 or len(saves) < 10) and time.monotonic() < deadline:
            state = load_checkpoint(path)  # never a partial file: the rename is atomic
            assert torch.all(state["model"]["w"] == state["step"])
            seen.append(state["step"])
    finally:
        stop.set()
        thread.join()
    assert len(saves) >= 10 and len(set(seen)) > 1, (len(saves), sorted(set(seen))[:5])


def _fail_at(point: str, monkeypatch) -> None:
    """Make every checkpoint write fail with ENOSPC at ``point``."""
    import vqspeech.files

    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if point == "write":
        real_save = torch.save

        def save(obj, f, *args, **kwargs):  # half a file, then the disk is full
            real_save(obj, f, *args, **kwargs)
            with open(f, "r+b") as out:
                out.truncate(os.path.getsize(f) // 2)
            raise full

        monkeypatch.setattr(torch, "save", save)
    elif point == "fsync":
        monkeypatch.setattr(vqspeech.files.os, "fsync", lambda fd: (_ for _ in ()).throw(full))
    elif point == "rename":
        monkeypatch.setattr(vqspeech.files.os, "replace", lambda a, b: (_ for _ in ()).throw(full))
    else:
        raise AssertionError(point)


@pytest.mark.parametrize("point", ["write", "fsync", "rename"])
def test_a_full_disk_keeps_the_last_checkpoint_and_stops_the_run(point, demo_recipe, tiny_corpus, tiny_overrides,
                                                                 tiny_config, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    extra = ("train.audio_every=null", "train.valid_every=1000", "train.checkpoint_every=2", FP32)
    overrides = tiny_overrides(tiny_corpus, run_dir, *extra)
    assert main(["train", str(demo_recipe), *overrides, "train.max_steps=2", "-q"]) == 0
    checkpoints = run_dir / "checkpoints"
    before = {p.name: p.read_bytes() for p in checkpoints.iterdir()}
    _fail_at(point, monkeypatch)
    capsys.readouterr()
    assert main(["train", str(demo_recipe), *overrides, "train.max_steps=8", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "could not save" in err and str(checkpoints) in err and "MB" in err and "No space left" in err, err
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in checkpoints.iterdir()}
    assert after == before  # the previous checkpoint intact, no partial or temp file, nothing else written
    resumed = train(tiny_config(*extra, "train.max_steps=4", run_dir=run_dir), progress=False)
    assert resumed.resumed_from == 2 and resumed.step == 4  # it stopped at the failed save, and resumes


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_then_stops_and_the_resumed_run_equals_an_uninterrupted_one(
        signum, demo_recipe, tiny_corpus, tiny_overrides, tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    extra = ("train.audio_every=null", "train.valid_every=100000", "train.checkpoint_every=100000",
             "train.log_every=1000", FP32)
    overrides = tiny_overrides(tiny_corpus, run_dir, *extra)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vqspeech", "train", str(demo_recipe), *overrides,
                             "train.max_steps=100000", "-q"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (run_dir / "tensorboard").exists() and time.monotonic() < deadline:  # the loop has started
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err, err
    assert f"stopped by {signum.name}" in out, out
    stopped = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    signal_step = stopped["step"]
    assert f"to step {signal_step} " in out and signal_step > 0, out
    bound = f"train.max_steps={signal_step + 3}"
    resumed = train(tiny_config(*extra, bound, run_dir=run_dir), progress=False)
    assert resumed.resumed_from == signal_step  # no step lost
    straight = train(tiny_config(*extra, bound, run_dir=tmp_path / "straight"), progress=False)
    a = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(straight.checkpoint)["model"]
    max_delta = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    print(f"\n{signum.name} at step {signal_step}; resumed from {resumed.resumed_from} to {resumed.step}; "
          f"max |Δ| of the weights against an uninterrupted run: {max_delta}")  # pytest -s shows it
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_signal_exits_at_once():
    code = textwrap.dedent("""
        import os, signal, time
        from vqspeech.training.stopping import StopSignals
        with StopSignals() as s:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            assert s.received == signal.SIGTERM, s.received
            print("first recorded", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            print("still running")
    """)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 143, done.stderr
    assert done.stdout.strip() == "first recorded" and time.monotonic() - started < 5
    assert "again: stopping now" in done.stderr
