"""Fine-tuning (init_from): every weight copied but the per-speaker ones; a model that differs refused in one line."""

from __future__ import annotations

import pytest
import torch

from vqspeech.checkpoint import save_checkpoint
from vqspeech.errors import UserError
from vqspeech.models import VQVAE, build_model
from vqspeech.training.init_from import architecture_difference, initialize_from


def _saved(tmp_path, kwargs, seed=1):
    torch.manual_seed(seed)
    model = build_model(kwargs)
    path = save_checkpoint(tmp_path / "source.pt", {"step": 7, "model_kwargs": kwargs, "model": model.state_dict(),
                                                    "config": {}})
    return model, path


def test_every_weight_is_copied_except_the_speaker_table(tmp_path, tiny_model_kwargs):
    source, path = _saved(tmp_path, tiny_model_kwargs(("a", "b", "c")))
    torch.manual_seed(2)
    kwargs = tiny_model_kwargs(("x", "y"))  # another corpus: two speakers, not three
    target = build_model(kwargs)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    done = initialize_from(target, kwargs, str(path))
    assert done.kept == ["speakers.embedding.weight"] and done.step == 7
    assert done.copied == len(before) - 1
    for key, value in target.state_dict().items():
        expected = before[key] if key in VQVAE.PER_SPEAKER else source.state_dict()[key]
        assert torch.equal(value, expected), key


def test_a_run_folder_is_read_from_its_last_checkpoint(tmp_path, tiny_model_kwargs):
    kwargs = tiny_model_kwargs()
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    source, path = _saved(tmp_path, kwargs)
    path.rename(tmp_path / "run" / "checkpoints" / "last.pt")
    torch.manual_seed(2)
    target = build_model(kwargs)
    assert not torch.equal(target.state_dict()["encoder.net.0.weight"], source.state_dict()["encoder.net.0.weight"])
    assert initialize_from(target, kwargs, str(tmp_path / "run")).kept == []
    assert torch.equal(target.state_dict()["encoder.net.0.weight"], source.state_dict()["encoder.net.0.weight"])


def test_a_model_of_other_shapes_is_refused_in_one_line(tmp_path, tiny_model_kwargs):
    _, path = _saved(tmp_path, tiny_model_kwargs())
    kwargs = tiny_model_kwargs()
    kwargs["model"]["encoder"]["channels"] = 16
    with pytest.raises(UserError) as err:
        initialize_from(build_model(kwargs), kwargs, str(path))
    message = str(err.value)
    assert "\n" not in message
    assert "model.encoder.channels (8 there, 16 in this config)" in message


def test_a_stride_that_keeps_every_shape_is_still_refused(tmp_path, tiny_model_kwargs):
    """Strides change the hop, not one weight's shape: shapes alone would let it through."""
    _, path = _saved(tmp_path, tiny_model_kwargs())
    kwargs = tiny_model_kwargs()
    kwargs["model"]["encoder"]["strides"] = [4, 2, 2]  # hop 16, not 8
    with pytest.raises(UserError, match=r"model\.encoder\.strides \(None there, \[4, 2, 2\] in this config\)"):
        initialize_from(build_model(kwargs), kwargs, str(path))


def test_training_settings_may_differ(tiny_model_kwargs):
    a, b = tiny_model_kwargs(), tiny_model_kwargs()
    b["model"]["jitter"] = 0.5
    b["model"]["bottleneck"]["dead_code_steps"] = 20
    assert architecture_difference(a["model"], b["model"]) is None
    b["model"]["bottleneck"]["codebook_size"] = 32
    assert architecture_difference(a["model"], b["model"]) == ("model.bottleneck.codebook_size", 16, 32)


def test_a_missing_source_says_what_init_from_takes(tiny_model_kwargs, tmp_path):
    kwargs = tiny_model_kwargs()
    with pytest.raises(UserError, match=r"init_from=.*nope: no such file or run folder, and no shipped model"):
        initialize_from(build_model(kwargs), kwargs, str(tmp_path / "nope"))


def test_train_with_init_from_starts_from_the_source_weights(tiny_config, trained_run, tmp_path):
    """A fine-tuning run's first weights are the source's (checked after 0 updates: lr tiny, one step)."""
    from vqspeech.checkpoint import load_checkpoint
    from vqspeech.training import train

    cfg = tiny_config(f"init_from={trained_run}", "train.max_steps=1", "train.lr=1e-12", "train.audio_every=null",
                      run_dir=tmp_path / "tuned")
    train(cfg, progress=False)
    source = load_checkpoint(trained_run / "checkpoints" / "last.pt")["model"]
    tuned = load_checkpoint(tmp_path / "tuned" / "checkpoints" / "last.pt")["model"]
    key = "encoder.net.0.weight"
    assert torch.allclose(tuned[key], source[key], atol=1e-6)
    fresh = tmp_path / "fresh"
    train(tiny_config("train.max_steps=1", "train.lr=1e-12", "train.audio_every=null", run_dir=fresh), progress=False)
    assert not torch.allclose(load_checkpoint(fresh / "checkpoints" / "last.pt")["model"][key], source[key])


def test_the_same_speakers_keep_their_rows_and_a_different_set_of_equal_size_does_not(tmp_path, tiny_model_kwargs):
    source, path = _saved(tmp_path, tiny_model_kwargs(("a", "b")))
    key = "speakers.embedding.weight"
    for names, copied in ((("a", "b"), True), (("x", "y"), False)):  # equal shapes both times
        torch.manual_seed(2)
        kwargs = tiny_model_kwargs(names)
        target = build_model(kwargs)
        initialize_from(target, kwargs, str(path))
        assert torch.equal(target.state_dict()[key], source.state_dict()[key]) == copied, names


def test_a_hop_check_or_a_generation_chunk_is_no_difference(tiny_model_kwargs):
    a, b = tiny_model_kwargs(), tiny_model_kwargs()
    b["model"]["encoder"]["hop"] = 8  # the check of the strides' hop, which they make anyway
    assert architecture_difference(a["model"], b["model"]) is None
