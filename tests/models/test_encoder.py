import pytest
import torch

from vqspeech.models.encoder import ConvEncoder


def test_chunked_encoding_equals_one_pass():
    torch.manual_seed(0)
    enc = ConvEncoder(channels=16, latent_dim=8).eval()
    wav = torch.randn(2, 1, 64 * 50).clamp(-1, 1)
    whole = enc(wav)
    enc.chunk_frames = 7  # 50 frames in 8 chunks, each with real audio as context
    chunked = enc(wav)
    assert chunked.shape == whole.shape
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)
    enc.chunk_frames = 1
    torch.testing.assert_close(enc(wav), whole, atol=1e-5, rtol=1e-5)


def test_context_layers_widen_the_receptive_field_and_chunking_stays_exact():
    torch.manual_seed(0)
    plain, wide = ConvEncoder(channels=8, latent_dim=4), ConvEncoder(channels=8, latent_dim=4, context_layers=2)
    assert plain.receptive_field == 190 and wide.receptive_field == 190 + 2 * 2 * 64
    wide.eval()
    wav = torch.randn(1, 1, 64 * 40).clamp(-1, 1)
    whole = wide(wav)
    # a change at frame 20's samples reaches frames 20 ± (1 + 2) but no further
    poked = wav.clone()
    poked[..., 64 * 20 + 30] += 0.5
    changed = (wide(poked) - whole).abs().amax(1)[0] > 1e-7
    assert changed[17:24].any() and not changed[:16].any() and not changed[25:].any()
    wide.chunk_frames = 6
    torch.testing.assert_close(wide(wav), whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("frontend", ["mfcc", "logmel"])
def test_spectral_frontend_keeps_the_hop_its_receptive_field_and_exact_chunking(frontend):
    torch.manual_seed(0)
    enc = ConvEncoder(channels=8, latent_dim=4, n_layers=6, frontend=frontend, sample_rate=16000).eval()
    wav = (0.3 * torch.randn(1, 1, 64 * 60)).clamp(-1, 1)
    whole = enc(wav)
    assert whole.shape == (1, 4, 60) and enc.hop_length == 64
    # a click in frame 30 changes only the frames within the receptive field around it
    poked = wav.clone()
    poked[..., 64 * 30 + 32] += 0.5
    changed = ((enc(poked) - whole).abs().amax(1)[0] > 1e-6).nonzero()[:, 0]
    reach = enc.receptive_field // 2 // 64 + 1
    assert len(changed) and changed.min() >= 30 - reach and changed.max() <= 30 + reach
    enc.chunk_frames = 9
    torch.testing.assert_close(enc(wav), whole, atol=1e-4, rtol=1e-4)


def test_spectral_frontend_needs_a_sample_rate_and_a_known_name():
    with pytest.raises(ValueError, match="sample_rate"):
        ConvEncoder(frontend="mfcc")
    with pytest.raises(ValueError, match="waveform, mfcc, logmel"):
        ConvEncoder(frontend="cqt", sample_rate=16000)
