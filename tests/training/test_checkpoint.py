"""Checkpoints are read without pickle: a malicious file is refused and its payload never runs."""

import pickle

import os

import pytest
import torch

from vqspeech.errors import UserError
from vqspeech.checkpoint import find_kwargs_difference, load_checkpoint, save_checkpoint


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (str(self.marker),))


def _touch(path):  # what the attacker's pickle would run
    with open(path, "w") as f:
        f.write("pwned")
    return {}


def test_a_pickle_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    for protocol in (2, pickle.DEFAULT_PROTOCOL):
        torch.save({"model": Payload(marker), "model_kwargs": {}}, evil, pickle_protocol=protocol)
        with pytest.raises(UserError, match="refused, it needs pickle to load") as info:
            load_checkpoint(evil)
        assert "\n" not in str(info.value) and "weights_only" not in str(info.value)
        if protocol == 2:
            assert "_touch" in str(info.value)  # names what it refused to import
        assert not marker.exists()


def test_round_trip_and_atomic_write(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint(path, {"step": 3, "model": {"w": torch.ones(2)}, "model_kwargs": {"a": 1}})
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3 and torch.equal(loaded["model"]["w"], torch.ones(2))
    assert loaded["vqspeech_version"] and loaded["format"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temp file left
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual mode, not mkstemp's private 0600


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(junk)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(1)}, plain)
    with pytest.raises(UserError, match="not a vqspeech checkpoint"):
        load_checkpoint(plain)


def test_kwargs_difference_names_the_first_differing_key():
    a = {"model": {"decoder": {"channels": 48, "stacks": 2}}, "speakers": ["a"]}
    assert find_kwargs_difference(a, a) is None
    b = {"model": {"decoder": {"channels": 64, "stacks": 2}}, "speakers": ["a"]}
    assert find_kwargs_difference(a, b) == "model.decoder.channels"
    assert find_kwargs_difference(a, {**a, "extra": 1}) == "extra"


def test_a_checkpoint_whose_weights_do_not_fit_its_kwargs_names_the_key(tiny_config, tmp_path):
    from vqspeech.training import train
    from vqspeech.checkpoint import model_from_checkpoint

    run_dir = tmp_path / "run"
    train(tiny_config(run_dir=run_dir), progress=False)
    payload = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    payload["model"]["bottleneck.codebook"] = torch.zeros(3, 3)
    with pytest.raises(UserError, match=r"'bottleneck.codebook' has shape \(3, 3\)"):
        model_from_checkpoint(payload)
    del payload["model"]["bottleneck.codebook"]
    with pytest.raises(UserError, match="'bottleneck.codebook' is missing"):
        model_from_checkpoint(payload)


def test_the_model_knows_its_sample_rate_and_older_checkpoints_take_the_runs(trained_run):
    from vqspeech.checkpoint import load_checkpoint, model_from_checkpoint

    payload = load_checkpoint(trained_run / "checkpoints" / "last.pt")
    assert payload["model_kwargs"]["sample_rate"] == 16000
    assert model_from_checkpoint(payload).sample_rate == 16000
    older = {**payload, "model_kwargs": {k: v for k, v in payload["model_kwargs"].items() if k != "sample_rate"},
             "config": {**payload["config"], "data": {**payload["config"]["data"], "sample_rate": 8000}}}
    assert model_from_checkpoint(older).sample_rate == 8000
