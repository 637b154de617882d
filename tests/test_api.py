"""The Python API (vqspeech/api.py): the README's example runs as written (on the tiny run), NumPy in gives
NumPy out and torch in gives torch out, shapes follow the hop, and misuse is a one-line UserError."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import vqspeech
from vqspeech.data.audio import load_audio
from vqspeech.errors import UserError


def readme_example(repo_root) -> str:
    text = (repo_root / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "README.md has one Python example"
    return blocks[0]


def test_the_readme_example_runs(repo_root, trained_run, tiny_corpus):
    code = readme_example(repo_root)
    wav = sorted(tiny_corpus.glob("spk_a/*.wav"))[0]
    for old, new in (('"runs/demo"', repr(str(trained_run))), ('"data/demo/kal16/s0001.wav"', repr(str(wav))),
                     ('"kal16"', '"spk_a"'), ('"slt"', '"spk_b"')):
        assert old in code, old
        code = code.replace(old, new)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert isinstance(scope["model"], vqspeech.Model)
    assert scope["codes"].dtype == np.int64 and len(scope["codes"]) == -(-len(scope["wav"]) // scope["model"].hop_length)
    assert scope["same"].shape == scope["wav"].shape == scope["other"].shape
    assert scope["out"].codes.shape == (2, 100) and scope["out"].quantized.shape == (2, 64, 100)


def test_numpy_in_numpy_out_and_torch_in_torch_out(trained_run, tiny_corpus):
    model = vqspeech.load(trained_run)
    assert model.sample_rate == 16000 and model.hop_length == 64 and model.speakers == ["spk_a", "spk_b", "spk_c"]
    wav = load_audio(sorted(tiny_corpus.glob("spk_b/*.wav"))[0], model.sample_rate)[:3000]
    codes = model.encode(wav)
    assert isinstance(codes, np.ndarray) and codes.shape == (-(-3000 // 64),)
    tcodes = model.encode(torch.from_numpy(wav))
    assert isinstance(tcodes, torch.Tensor) and torch.equal(tcodes, torch.from_numpy(codes))
    out = model.decode(tcodes, speaker="spk_a")
    assert isinstance(out, torch.Tensor) and out.shape == (len(codes) * 64,)
    again = model.decode(codes, speaker="spk_a")  # seeded: the same samples
    assert isinstance(again, np.ndarray) and np.array_equal(again, out.numpy())
    converted = model.convert(torch.from_numpy(wav), speaker="spk_c")
    assert isinstance(converted, torch.Tensor) and converted.shape == (3000,)
    assert vqspeech.load(trained_run / "checkpoints" / "last.pt").run.step == model.run.step


def test_misuse_is_a_one_line_user_error(trained_run):
    model = vqspeech.load(trained_run)
    wav = np.zeros(640, np.float32)
    with pytest.raises(UserError, match="unknown speaker 'nobody'"):
        model.convert(wav, speaker="nobody")
    with pytest.raises(UserError, match="exactly one of"):
        model.decode(model.encode(wav))
    with pytest.raises(UserError, match="speaker=reference"):
        model.convert(wav, reference=wav)
    with pytest.raises(UserError, match="mono waveform"):
        model.encode(np.zeros((2, 640), np.float32))
    with pytest.raises(UserError, match="needs speaker="):
        model.reconstruct(wav)
    with pytest.raises(UserError, match="unknown corpus"):
        vqspeech.prepare("timit")


def test_vector_quantizer_on_its_own_is_the_nearest_codebook_vector():
    vq = vqspeech.VectorQuantizer(dim=4, codebook_size=8)
    z = torch.randn(2, 4, 10, requires_grad=True)
    out = vq(z)
    assert isinstance(out, vqspeech.BottleneckResult)
    distances = torch.cdist(z.detach().permute(0, 2, 1).reshape(-1, 4), vq.codebook.detach())
    assert torch.equal(out.codes.reshape(-1), distances.argmin(dim=1))
    out.quantized.sum().backward()  # straight-through: the gradient reaches z_e unchanged
    assert torch.equal(z.grad, torch.ones_like(z))
    assert set(out.losses) == {"commitment", "codebook"}


def test_train_and_prepare_from_python(demo_recipe, tiny_corpus, tmp_path):
    result = vqspeech.train(demo_recipe, ["+debug=tiny", f"data.root={tiny_corpus}", f"run_dir={tmp_path / 'r'}",
                                          "train.device=cpu", "train.audio_every=null"])
    assert result.step == 2 and result.checkpoint.is_file()


API_MISUSE = [  # (call on the tiny run's model, the one line it must give)
    (lambda m, w: m.encode((w * 32767).astype(np.int16)), r"audio must be float samples in \[-1, 1\], got int16; divide 16-bit PCM by 32768"),
    (lambda m, w: m.encode(np.full(640, np.nan, np.float32)), "the audio holds NaN or infinite samples"),
    (lambda m, w: m.encode(np.array([0.1, np.inf], np.float32)), "the audio holds NaN or infinite samples"),
    (lambda m, w: m.encode(np.zeros(0, np.float32)), r"the audio is empty \(0 samples\)"),
    (lambda m, w: m.encode(w[:10]), r"the audio holds 10 samples at 16000 Hz, fewer than one code \(64 samples\)"),
    (lambda m, w: m.encode(w, sample_rate=0), "sample_rate must be a positive whole number of Hz, got 0"),
    (lambda m, w: m.decode(np.array([0, 99]), speaker="spk_a"), r"codes must lie in \[0, 16\), got values from 0 to 99"),
    (lambda m, w: m.decode(np.array([-1, 3]), speaker="spk_a"), r"codes must lie in \[0, 16\), got values from -1 to 3"),
    (lambda m, w: m.decode(np.array([1.0, 2.0]), speaker="spk_a"), "codes must be integers, got torch.float64"),
    (lambda m, w: m.decode(np.zeros((2, 5), np.int64), speaker="spk_a"), r"codes must be one utterance \[F\], got shape \(2, 5\)"),
    (lambda m, w: m.decode(np.zeros(0, np.int64), speaker="spk_a"), r"codes are empty \(0 frames\)"),
]


@pytest.mark.parametrize("call, message", API_MISUSE)
def test_the_api_refuses_what_the_cli_refuses_in_one_line(trained_run, tiny_corpus, call, message):
    model = vqspeech.load(trained_run)
    wav = load_audio(sorted(tiny_corpus.glob("spk_b/*.wav"))[0], model.sample_rate)[:3200]
    with pytest.raises(UserError, match=message) as info:
        call(model, wav)
    assert "\n" not in str(info.value)


def test_references_are_checked_as_the_cli_checks_them(reference_run, tiny_corpus):
    model = vqspeech.load(reference_run)
    wav = load_audio(sorted(tiny_corpus.glob("spk_b/*.wav"))[0], model.sample_rate)
    with pytest.raises(UserError, match="the reference audio is silent"):
        model.convert(wav, reference=np.zeros(32000, np.float32))
    with pytest.raises(UserError, match=r"the reference is 0.50 s long; a reference needs at least 1 s of speech"):
        model.convert(wav, reference=wav[:8000])
    assert model.convert(wav, reference=np.concatenate([wav, wav])).shape == wav.shape  # 1.5 s: accepted


def test_sample_rate_resamples_to_the_models(trained_run, tiny_corpus):
    from vqspeech.data.audio import resample

    model = vqspeech.load(trained_run)
    wav = load_audio(sorted(tiny_corpus.glob("spk_b/*.wav"))[0], model.sample_rate)[:6400]
    at_8k = resample(wav, 16000, 8000)
    np.testing.assert_array_equal(model.encode(at_8k, sample_rate=8000), model.encode(resample(at_8k, 8000, 16000)))
    assert model.encode(wav, sample_rate=16000).tolist() == model.encode(wav).tolist()
    assert model.convert(at_8k, speaker="spk_a", sample_rate=8000).shape == (len(resample(at_8k, 8000, 16000)),)
