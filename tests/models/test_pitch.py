"""The pitch stream: codes stay in range with 0 for unvoiced, decoding returns each bin's centre within half a
bin of the input, a register moves the decoded melody and nothing else, the features are the decoder's
two extra channels at the content rate, and a pitch model refuses to decode without its pitch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vqspeech.models import build_model
from vqspeech.models.builders import model_kwargs
from vqspeech.models.pitch import LOG_F0_CENTRE, LOG_F0_SCALE, PitchCodes, PitchStream


def test_codes_round_trip_within_half_a_bin():
    stream = PitchStream(levels=33, hop=640, z_range=3.0)
    register = torch.tensor([[math.log(120), 0.2]])
    z = torch.linspace(-2.99, 2.99, 200)[None]
    log_f0 = register[:, :1] + z * register[:, 1:]
    voiced = torch.ones_like(z, dtype=torch.bool)
    codes = stream.quantize(log_f0, voiced, register)
    assert codes.min() >= 1 and codes.max() <= 32
    decoded, is_voiced = stream.dequantize(codes, register)
    half_bin = 6.0 / 32 / 2 * 0.2
    assert is_voiced.all() and (decoded - log_f0).abs().max() <= half_bin + 1e-6


def test_unvoiced_is_code_zero_and_far_values_are_clipped():
    stream = PitchStream(levels=5)
    register = torch.tensor([[5.0, 0.1]])
    codes = stream.quantize(torch.tensor([[5.0, 9.0, 1.0, 5.0]]), torch.tensor([[False, True, True, True]]), register)
    assert codes.tolist() == [[0, 4, 1, 3]]  # z = +40 and -40 clip to the end bins; z = 0 is the upper middle bin


def test_a_register_moves_the_melody_and_keeps_the_codes():
    stream = PitchStream(levels=32)
    codes = torch.tensor([[0, 3, 17, 31]])
    low, high = torch.tensor([[math.log(100), 0.2]]), torch.tensor([[math.log(200), 0.2]])
    a, _ = stream.dequantize(codes, low)
    b, _ = stream.dequantize(codes, high)
    assert torch.allclose((b - a)[:, 1:], torch.full((1, 3), math.log(2)), atol=1e-6) and a[0, 0] == b[0, 0] == 0
    moved = PitchCodes(codes[0], low[0]).in_register(high[0])
    assert torch.equal(moved.codes, codes[0]) and torch.equal(moved.register, high[0])


def test_features_are_repeated_to_the_content_rate_and_zero_where_unvoiced():
    stream = PitchStream(levels=32, hop=640)
    codes = torch.tensor([[0, 16, 16]])
    register = torch.tensor([[LOG_F0_CENTRE, 0.2]])
    features = stream.features(codes, register, frames=25, content_hop=64)
    assert features.shape == (1, 2, 25)
    assert (features[0, :, :10] == 0).all() and (features[0, 1, 10:] == 1).all()
    centre, _ = stream.dequantize(codes, register)
    assert torch.allclose(features[0, 0, 10:], (centre[0, 1] - LOG_F0_CENTRE) / LOG_F0_SCALE)
    with pytest.raises(ValueError, match="multiple"):
        stream.features(codes, register, 25, content_hop=300)


def test_bits_per_second_are_log2_levels_per_frame():
    assert PitchStream(levels=32, hop=640).bits_per_second(16000) == pytest.approx(125.0)


@pytest.fixture
def pitch_model():
    torch.manual_seed(0)
    cfg = {"encoder": {"channels": 8, "latent_dim": 4, "n_layers": 6, "kernel_size": 4, "stride": 2},
           "decoder": {"kind": "parallel", "channels": 16, "blocks": 2, "expansion": 2},
           "bottleneck": {"kind": "vq", "codebook_size": 8}, "speaker_dim": 4,
           "pitch": {"levels": 16, "hop": 320}}
    model = build_model(model_kwargs(cfg, ["a", "b"], 16000)).eval()
    model.pitch_registers.copy_(torch.tensor([[math.log(110), 0.2], [math.log(220), 0.2]]))
    return model


def tone(seconds=0.5, f0=150.0):
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(4 * np.pi * f0 * t)).astype(np.float32)


def test_a_pitch_model_decodes_in_the_register_it_is_given_and_refuses_no_pitch(pitch_model):
    wav = tone()
    codes = pitch_model.encode_waveform(wav)
    pitch = pitch_model.encode_pitch(wav)
    assert len(pitch.codes) == math.ceil(len(wav) / 320) and (pitch.codes > 0).float().mean() > 0.8
    assert math.exp(float(pitch.register[0])) == pytest.approx(150, rel=0.03)
    ids = torch.tensor([0])
    own = pitch_model.decode([codes], ids, pitch=[pitch])[0]
    moved = pitch_model.decode([codes], ids, pitch=[pitch.in_register(pitch_model.speaker_register(torch.tensor([1]))[0])])[0]
    assert own.shape == moved.shape and not torch.allclose(own, moved)  # the register reaches the decoder
    with pytest.raises(ValueError, match="pitch stream"):
        pitch_model.decode([codes], ids)
    out = pitch_model(torch.from_numpy(wav[: len(wav) // 64 * 64])[None, None], ids,
                      pitch=pitch_model.pitch_input(wav[: len(wav) // 64 * 64]))
    assert torch.isfinite(out.reconstruction)
    with pytest.raises(ValueError, match="F0 and register"):
        pitch_model(torch.from_numpy(wav[:6400])[None, None], ids)


def test_a_pitch_hop_that_is_not_a_multiple_of_the_content_hop_is_refused():
    cfg = {"encoder": {"channels": 8, "latent_dim": 4, "n_layers": 6}, "decoder": {"kind": "parallel", "channels": 16,
           "blocks": 1}, "bottleneck": {"kind": "vq", "codebook_size": 8}, "speaker_dim": 4,
           "pitch": {"levels": 16, "hop": 100}}
    with pytest.raises(ValueError, match="multiple of the encoder hop"):
        build_model(model_kwargs(cfg, ["a"], 16000))
