"""The shipped models: the SHA-256 check, the default of commands given no --run, and the one in the package."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from vqspeech import pretrained
from vqspeech.checkpoint import file_hash, load_checkpoint, save_checkpoint
from vqspeech.errors import UserError
from vqspeech.files import sha256
from vqspeech.models import build_model


@pytest.fixture
def weights(tmp_path, tiny_model_kwargs, monkeypatch):
    """A weights folder shipping a tiny model as the default name, in place of the package's."""
    folder = tmp_path / "weights"
    kwargs = tiny_model_kwargs()
    path = save_checkpoint(folder / "tiny.pt", {"step": 3, "model_kwargs": kwargs,
                                               "model": build_model(kwargs).state_dict(),
                                               "config": {"data": {"sample_rate": 16000}}})
    index = {pretrained.DEFAULT: {"summary": "a tiny test model", "checkpoint": {
        "file": "tiny.pt", "bytes": path.stat().st_size, "sha256": sha256(path)}}}
    (folder / pretrained.INDEX).write_text(json.dumps(index))
    monkeypatch.setattr(pretrained, "weights_dir", lambda: folder)
    return folder


def test_a_shipped_file_is_checked_against_its_sha256(weights):
    assert pretrained.shipped().checkpoint == weights / "tiny.pt"
    data = bytearray((weights / "tiny.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    (weights / "tiny.pt").write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        pretrained.shipped()
    message = str(err.value)
    assert "\n" not in message and "damaged or altered" in message and "reinstall vqspeech" in message


def test_a_missing_file_or_name_is_one_line(weights):
    with pytest.raises(UserError, match="no shipped model named 'other'; shipped: librispeech"):
        pretrained.shipped("other")
    (weights / "tiny.pt").unlink()
    with pytest.raises(UserError, match="is incomplete: .*tiny.pt is missing"):
        pretrained.shipped()


def test_no_run_means_the_shipped_model_whose_outputs_go_under_runs(weights):
    from vqspeech.runs import load_run

    run = load_run()
    assert run.shipped == pretrained.DEFAULT and run.step == 3
    assert run.checkpoint == weights / "tiny.pt"
    assert str(run.run_dir) == f"runs/shipped-{pretrained.DEFAULT}"  # never the installed package


def test_the_cli_says_it_uses_the_shipped_model(weights, capsys):
    import argparse

    from vqspeech.cli.options import load_run

    load_run(argparse.Namespace(run=None, checkpoint=None, device="cpu"))
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("using the shipped model 'librispeech' (a tiny test model)") and "--run RUN" in err


def test_load_by_name(weights):
    import vqspeech

    assert vqspeech.load("librispeech", device="cpu").run.shipped == "librispeech"
    assert vqspeech.load(device="cpu").run.checkpoint == weights / "tiny.pt"


# ---- the model in this package -------------------------------------------------------------------------------

def test_the_package_ships_librispeech_with_its_prior_and_curve_under_25_mb():
    model = pretrained.shipped("librispeech")  # checks every file's SHA-256
    sizes = {p.name: p.stat().st_size for p in (model.checkpoint, model.prior, model.curve)}
    assert sum(sizes.values()) <= 25e6, sizes
    payload = load_checkpoint(model.checkpoint)
    assert "optimizer" not in payload and payload["model_kwargs"]["model"]["speaker"]["kind"] == "reference"
    prior = load_checkpoint(model.prior)
    assert prior["model_kwargs"]["codes_hash"] == file_hash(model.checkpoint)  # the prior of these codes


def test_the_shipped_model_converts_to_a_reference_voice():
    import numpy as np

    import vqspeech

    model = vqspeech.load("librispeech", device="cpu")
    t = np.arange(2 * model.sample_rate) / model.sample_rate
    voiced = lambda f0: (0.3 * np.sign(np.sin(2 * np.pi * f0 * t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    out = model.convert(voiced(120), reference=voiced(220))
    assert out.shape == (2 * model.sample_rate,) and np.isfinite(out).all() and np.abs(out).max() > 1e-3


def test_the_fine_tuning_preset_comes_with_init_from_librispeech(repo_root, monkeypatch):
    from vqspeech.config import compose_recipe

    monkeypatch.setattr(pretrained, "names", lambda folder=None: ["librispeech"])
    cfg = compose_recipe(repo_root / "recipes" / "vctk", ["init_from=librispeech", "train.batch_size=4"])
    assert cfg.init_from == "librispeech"
    assert cfg.model.encoder.hop == 320 and cfg.model.decoder.kind == "parallel"
    assert cfg.model.speaker.kind == "reference" and cfg.model.bottleneck.codebook_size == 256
    assert cfg.train.crop_samples == 16000 and cfg.train.batch_size == 4  # the command line still wins
    plain = compose_recipe(repo_root / "recipes" / "vctk", [])
    assert plain.init_from is None and plain.model.decoder.kind == "wavenet"
