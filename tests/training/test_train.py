"""train(cfg) on the tiny config: checkpoints, resume by default, refusing a different model, determinism, bad data."""

import json
import logging
import re

import pytest
import torch

from vqspeech.errors import UserError
from vqspeech.training import TrainResult, train
from vqspeech.checkpoint import load_checkpoint, model_from_checkpoint

TINY_SPEAKERS = ["spk_a", "spk_b", "spk_c"]


def last_checkpoint(run_dir):
    return run_dir / "checkpoints" / "last.pt"


def test_two_steps_then_resume_to_four(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    first = train(tiny_config(run_dir=run_dir), progress=False)
    assert isinstance(first, TrainResult)
    assert (first.step, first.resumed_from, first.checkpoint) == (2, 0, last_checkpoint(run_dir))
    assert load_checkpoint(last_checkpoint(run_dir))["step"] == 2
    assert (run_dir / "config.yaml").is_file()
    # the valid loss is the teacher-forced cross-entropy of the saved model on the valid split, recomputed here
    from vqspeech.models.scoring import teacher_forced_loss

    from vqspeech.training.vqvae_task import VQVAETask

    task_model = model_from_checkpoint(load_checkpoint(last_checkpoint(run_dir)))
    valid = VQVAETask(tiny_config(run_dir=run_dir))._validation_set(False, None)
    assert len(valid.waves) == 2  # train.valid_utterances of the tiny config
    # rel 2 %: training may validate in bf16 (train.precision=auto), the check here runs in fp32
    assert first.valid_loss == pytest.approx(teacher_forced_loss(task_model, valid).per_sample, rel=0.02)
    assert set(first.train_losses) == {"total", "reconstruction", "codebook", "commitment"}
    assert set(first.metrics) == {"perplexity", "used_codes"}

    second = train(tiny_config("train.max_steps=4", run_dir=run_dir), progress=False)
    assert (second.step, second.resumed_from) == (4, 2)
    assert load_checkpoint(last_checkpoint(run_dir))["step"] == 4


def test_a_finished_run_is_not_trained_further(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir=run_dir), progress=False)
    before = load_checkpoint(last_checkpoint(run_dir))
    again = train(tiny_config(run_dir=run_dir), progress=False)
    assert (again.step, again.resumed_from) == (2, 2)
    after = load_checkpoint(last_checkpoint(run_dir))
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])


def test_checkpoint_loads_without_pickle_and_rebuilds_the_model(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir=run_dir), progress=False)
    payload = torch.load(last_checkpoint(run_dir), map_location="cpu", weights_only=True)
    assert payload["step"] == 2
    assert payload["model_kwargs"]["speakers"] == TINY_SPEAKERS
    assert payload["model_kwargs"]["model"]["decoder"]["residual_channels"] == 8
    assert payload["config"]["train"]["max_steps"] == 2
    assert not any(k.startswith("_orig_mod.") for k in payload["model"])
    model = model_from_checkpoint(payload)
    assert model.speakers.names == TINY_SPEAKERS
    state = model.state_dict()
    assert all(torch.equal(state[k], payload["model"][k]) for k in payload["model"])
    assert bool(model.bottleneck.initialized), "the data-initialised codebook is part of the saved state"
    assert (run_dir / "checkpoints" / "best.pt").is_file()


@pytest.mark.parametrize("override, key", [
    ("model.decoder.residual_channels=12", "model.decoder.residual_channels"),
    ("model.bottleneck.codebook_size=32", "model.bottleneck.codebook_size"),
])
def test_resuming_with_a_different_model_raises_naming_the_key(tiny_config, tmp_path, override, key):
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir=run_dir), progress=False)
    with pytest.raises(UserError, match=f"differs at '{key}'"):
        train(tiny_config(override, "train.max_steps=4", run_dir=run_dir), progress=False)
    assert load_checkpoint(last_checkpoint(run_dir))["step"] == 2


def test_resuming_on_a_corpus_with_other_speakers_raises(tiny_config, tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir=run_dir), progress=False)
    rows = [json.loads(line) for line in (tiny_corpus / "manifest.jsonl").read_text().splitlines()]
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    (fewer / "manifest.jsonl").write_text("".join(
        json.dumps({**r, "path": str(tiny_corpus / r["path"])}) + "\n" for r in rows if r["speaker"] != "spk_c"))
    with pytest.raises(UserError, match="differs at 'speakers'"):
        train(tiny_config("train.max_steps=4", root=fewer, run_dir=run_dir), progress=False)


# Dead-code restarts draw from torch's global RNG at every step, so they show whether resume restores it exactly.
@pytest.mark.parametrize("extra", [(), ("model.bottleneck.dead_code_steps=1",),
                                   ("bottleneck=ema", "model.bottleneck.init=kmeans")],
                         ids=["default", "restarts-use-the-rng", "ema"])
def test_resumed_run_equals_an_uninterrupted_run(tiny_config, tmp_path, extra):
    straight = train(tiny_config("train.max_steps=4", *extra, run_dir=tmp_path / "a"), progress=False)
    train(tiny_config("train.max_steps=2", *extra, run_dir=tmp_path / "b"), progress=False)
    resumed = train(tiny_config("train.max_steps=4", *extra, run_dir=tmp_path / "b"), progress=False)
    assert resumed.resumed_from == 2
    print(f"\n{extra}: step 4 uninterrupted {straight.train_losses} valid {straight.valid_loss}; "
          f"resumed from 2: {resumed.train_losses} valid {resumed.valid_loss}")  # pytest -s shows it
    assert resumed.train_losses == straight.train_losses
    assert resumed.valid_loss == straight.valid_loss
    a, b = load_checkpoint(last_checkpoint(tmp_path / "a")), load_checkpoint(last_checkpoint(tmp_path / "b"))
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert a["best_valid_loss"] == b["best_valid_loss"]


def test_training_changes_the_model(tiny_config, tmp_path):
    """Guards the determinism test: it must compare models that training moved."""
    train(tiny_config("train.max_steps=2", run_dir=tmp_path / "a"), progress=False)
    train(tiny_config("train.max_steps=4", run_dir=tmp_path / "b"), progress=False)
    a, b = load_checkpoint(last_checkpoint(tmp_path / "a")), load_checkpoint(last_checkpoint(tmp_path / "b"))
    moved = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    assert any(k.startswith("encoder.") for k in moved) and any(k.startswith("decoder.") for k in moved)


def manifest_with(tmp_path, tiny_corpus, extra_rows, keep=True):
    """A corpus root in tmp_path whose manifest lists the tiny corpus (absolute paths) plus extra_rows."""
    rows = [json.loads(line) for line in (tiny_corpus / "manifest.jsonl").read_text().splitlines()] if keep else []
    rows = [{**r, "path": str(tiny_corpus / r["path"])} for r in rows] + extra_rows
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_an_unreadable_file_is_skipped_with_a_warning(tiny_config, tiny_corpus, tmp_path, caplog):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all")
    root = manifest_with(tmp_path, tiny_corpus, [{"path": str(junk), "speaker": "spk_a", "split": "train"}])
    with caplog.at_level(logging.WARNING, logger="vqspeech"):
        result = train(tiny_config(root=root, run_dir=tmp_path / "run"), progress=False)
    assert result.step == 2
    assert any(str(junk) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_a_corpus_whose_files_are_all_unreadable_raises(tiny_config, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all")
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "manifest.jsonl").write_text(json.dumps({"path": str(junk), "speaker": "a", "split": "train"}) + "\n")
    with pytest.raises(UserError, match="no usable training audio"):
        train(tiny_config(root=root, run_dir=tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()  # nothing written: the same command works once the data is fixed


@pytest.mark.parametrize("override, message", [
    ("train.batch_size=0", "train.batch_size must be at least 1, got 0"),
    ("train.num_workers=-1", "train.num_workers must be 0 or more, got -1"),
    ("train.crop_samples=-64", "train.crop_samples must be at least 1, got -64"),
    ("train.valid_every=0", "train.valid_every must be at least 1, got 0"),
    ("train.log_every=0", "train.log_every must be at least 1, got 0"),
    ("train.lr=-1", "train.lr must be positive, got -1"),
    ("train.max_steps=null", "train.max_steps must be at least 1, got None"),
    ("train.max_minutes=0", "train.max_minutes must be positive, or null"),
    ("model.bottleneck.codebook_size=0", "codebook_size must be at least 1, got 0"),
])
def test_a_value_the_loop_cannot_run_with_is_a_one_line_error_and_writes_nothing(tiny_config, tmp_path, override,
                                                                                 message):
    with pytest.raises(UserError, match=re.escape(message)):
        train(tiny_config(override, run_dir=tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()


def test_a_corpus_without_audio_raises(tiny_config, tmp_path):
    root = tmp_path / "empty"
    (root / "speaker").mkdir(parents=True)
    with pytest.raises(UserError, match="no audio"):
        train(tiny_config("data.manifest=null", root=root, run_dir=tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()


def test_crop_not_a_multiple_of_the_hop_raises(tiny_config, tmp_path):
    with pytest.raises(UserError, match="crop_samples=1000 must be a multiple"):
        train(tiny_config("train.crop_samples=1000", run_dir=tmp_path / "run"), progress=False)


def test_best_checkpoint_is_written_only_at_validated_steps(tiny_config, tmp_path, monkeypatch):
    from vqspeech import checkpoint as ckpt

    writes = []
    save = ckpt.save_checkpoint

    def recording_save(path, payload):
        writes.append((path.name, payload["step"]))
        return save(path, payload)

    monkeypatch.setattr(ckpt, "save_checkpoint", recording_save)
    train(tiny_config("train.max_steps=4", "train.valid_every=2", "train.checkpoint_every=1",
                      run_dir=tmp_path / "run"), progress=False)
    assert [step for name, step in writes if name == "last.pt"] == [1, 2, 3, 4]
    best_steps = [step for name, step in writes if name == "best.pt"]
    assert best_steps and set(best_steps) <= {2, 4}, best_steps
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")["step"] in (2, 4)


def test_a_folder_with_files_but_no_checkpoint_is_not_overwritten(tiny_config, tmp_path):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("my notes\n")
    with pytest.raises(UserError, match="already holds files but no checkpoint"):
        train(tiny_config(run_dir=run_dir), progress=False)
    assert (run_dir / "config.yaml").read_text() == "my notes\n"
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml"]


def _poison(monkeypatch, bad_items):
    """Make the crops with these item indices all-NaN (as a corrupt float file would be)."""
    from vqspeech.data.dataset import RandomCrops

    original = RandomCrops.__getitem__

    def getitem(self, i):
        item = original(self, i)
        return {**item, "wav": torch.full_like(item["wav"], float("nan"))} if i in bad_items else item

    monkeypatch.setattr(RandomCrops, "__getitem__", getitem)


@pytest.mark.parametrize("quantizer", ["vq", "ema"])
def test_a_nan_batch_is_skipped_and_leaves_model_and_codebook_finite(tiny_config, tmp_path, monkeypatch, quantizer):
    _poison(monkeypatch, bad_items={2, 3})  # batch size 2: the second step's batch
    cfg = tiny_config("train.max_steps=4", f"bottleneck={quantizer}", "model.bottleneck.dead_code_steps=1",
                      run_dir=tmp_path / "run")
    result = train(cfg, progress=False)
    assert (result.step, result.skipped_steps) == (4, 1)
    model = model_from_checkpoint(load_checkpoint(last_checkpoint(tmp_path / "run")))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.isfinite(model.bottleneck.codebook).all()


def test_too_many_non_finite_steps_stop_the_run_naming_the_last_good_checkpoint(tiny_config, tmp_path,
                                                                                monkeypatch):
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir=run_dir), progress=False)  # a good checkpoint at step 2
    _poison(monkeypatch, bad_items=set(range(4, 100)))
    with pytest.raises(UserError, match=r"3 non-finite steps in a row up to step 5.*last.pt \(step 2\)"):
        train(tiny_config("train.max_steps=20", "train.max_bad_steps=3", run_dir=run_dir), progress=False)
    assert load_checkpoint(last_checkpoint(run_dir))["step"] == 2


def test_keep_last_keeps_the_newest_numbered_checkpoints(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_config("train.max_steps=5", "train.checkpoint_every=1", "train.keep_last=2", run_dir=run_dir),
          progress=False)
    names = sorted(p.name for p in (run_dir / "checkpoints").glob("*.pt"))
    assert names == ["best.pt", "last.pt", "step-00000004.pt", "step-00000005.pt"]
    assert load_checkpoint(run_dir / "checkpoints" / "step-00000004.pt")["step"] == 4
    assert load_checkpoint(run_dir / "checkpoints" / "step-00000005.pt")["step"] == 5


def test_a_hop_the_strides_cannot_make_stops_before_anything_is_written(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(UserError, match=r"model.encoder.hop=160 .*set model.encoder.strides=\[5,2,2,2,2,2\]"):
        train(tiny_config("model.encoder.hop=160", run_dir=run_dir), progress=False)
    assert not run_dir.exists()


def test_the_voice_removing_levers_train_and_log_the_adversary(tiny_config, tmp_path):
    result = train(tiny_config("model.speaker_adversary=8", "model.encoder.instance_norm=true",
                               "model.encoder.strides=[5,2,2,2,2,2]", "train.crop_samples=1600"), progress=False)
    assert result.step == 2 and "speaker_adv" in result.train_losses
    model = model_from_checkpoint(load_checkpoint(result.checkpoint))
    assert "speaker_adv_accuracy" in result.metrics  # its value: tests/models/test_auxiliary_losses.py
    assert model.hop_length == 160 and model.adversary is not None and model.encoder.norm is not None


def test_cpc_trains_and_refuses_crops_shorter_than_its_steps(tiny_config, tmp_path):
    result = train(tiny_config("model.cpc_steps=4"), progress=False)
    assert "cpc" in result.train_losses and "cpc_accuracy" in result.metrics  # value: test_auxiliary_losses.py
    with pytest.raises(UserError, match="holds 16 frames, but CPC predicts 20 ahead"):
        train(tiny_config("model.cpc_steps=20", run_dir=tmp_path / "other"), progress=False)
