"""Training time over resumes: minutes_trained adds up, and train.keep_hours keeps a checkpoint at each mark."""

from __future__ import annotations

from vqspeech.checkpoint import load_checkpoint
from vqspeech.training import train


def test_minutes_add_up_over_resumes_and_keep_hours_marks_each_once(tiny_config, tmp_path):
    run = tmp_path / "run"
    mark = 1e-6  # hours: the first step passes it
    common = ("train.audio_every=null", "train.valid_every=1000", f"train.keep_hours=[{mark}, 1000]")
    train(tiny_config("train.max_steps=2", *common, run_dir=run), progress=False)
    first = load_checkpoint(run / "checkpoints" / "last.pt")["minutes_trained"]
    kept = run / "checkpoints" / f"hours-{mark:g}.pt"
    assert first > 0 and kept.is_file()
    assert not (run / "checkpoints" / "hours-1000.pt").exists()
    stamp = kept.stat().st_mtime_ns
    train(tiny_config("train.max_steps=4", *common, run_dir=run), progress=False)
    second = load_checkpoint(run / "checkpoints" / "last.pt")
    assert second["step"] == 4 and second["minutes_trained"] > first  # the resumed minutes count on
    assert kept.stat().st_mtime_ns == stamp  # a mark already kept is not written again
    assert load_checkpoint(kept)["step"] <= 2


def test_keep_hours_refuses_what_is_not_a_list_of_positive_hours(tiny_config, tmp_path):
    import pytest

    from vqspeech.errors import UserError

    with pytest.raises(UserError, match="keep_hours"):
        train(tiny_config("train.keep_hours=[0]", run_dir=tmp_path / "bad"), progress=False)
