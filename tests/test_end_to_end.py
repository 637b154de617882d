"""Slow end-to-end runs: the demo recipe learns on flite speech, and on the real VCTK excerpt.

The tiny train -> report run that stays in the default suite is in test_cli.py.
"""

import shutil

import pytest

from vqspeech.config import compose_recipe
from vqspeech.data.demo import prepare_demo
from vqspeech.training import train

pytestmark = pytest.mark.slow

LN_256 = 5.545  # cross-entropy of a uniform guess over 256 μ-law values, nats/sample


@pytest.mark.skipif(shutil.which("flite") is None, reason="needs Debian's flite")
def test_demo_recipe_learns_in_a_few_hundred_steps(demo_recipe, tmp_path):
    corpus = prepare_demo(tmp_path / "demo", n_sentences=24, n_valid=2, n_test=2, progress=False)
    cfg = compose_recipe(demo_recipe, [f"data.root={corpus.root}", f"run_dir={tmp_path / 'run'}",
                                       "train.max_steps=300", "train.valid_every=300", "train.num_workers=0"])
    result = train(cfg, progress=False)
    # a WaveNet that learnt nothing stays at ln 256; one that learnt the signal's statistics drops well below
    assert result.valid_loss < LN_256 - 1.5
    assert result.train_losses["reconstruction"] < LN_256 - 1.5
    assert result.metrics["used_codes"] > 8  # restarts keep the codebook in use


def test_vctk_mini_trains_and_resumes(demo_recipe, vctk_mini, tmp_path):
    base = [f"data.root={vctk_mini / 'wav16'}", "data.manifest=null", "data.valid_fraction=0.1",
            "data.test_fraction=0.1", f"run_dir={tmp_path / 'run'}", "train.num_workers=0", "train.valid_every=100"]
    first = train(compose_recipe(demo_recipe, [*base, "train.max_steps=100"]), progress=False)
    # real studio speech is harder than flite's: 100 CPU steps take it about 1 nat below a uniform guess
    assert first.valid_loss < LN_256 - 0.5
    second = train(compose_recipe(demo_recipe, [*base, "train.max_steps=150"]), progress=False)
    assert (second.resumed_from, second.step) == (100, 150)
    assert second.valid_loss < LN_256 - 0.5
