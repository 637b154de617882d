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


def test_per_layer_strides_make_their_product_the_hop_and_the_receptive_field_is_exact():
    torch.manual_seed(0)
    enc = ConvEncoder(channels=8, latent_dim=4, strides=[5, 2, 2, 2, 2, 2]).eval()
    assert enc.hop_length == 160 and enc.kernels == [7, 4, 4, 4, 4, 4]
    wav = torch.randn(1, 1, 160 * 30).clamp(-1, 1)
    whole = enc(wav)
    assert whole.shape == (1, 4, 30)
    # the samples that reach frame 15 are exactly the receptive field
    wav.requires_grad_(True)
    enc(wav)[0, :, 15].sum().backward()
    reached = (wav.grad[0, 0].abs() > 0).nonzero()[:, 0]
    assert reached.max() - reached.min() + 1 == enc.receptive_field
    enc.chunk_frames = 4
    torch.testing.assert_close(enc(wav.detach()), whole, atol=1e-5, rtol=1e-5)
    # the default strides give the paper's figure
    assert ConvEncoder(channels=8, latent_dim=4, strides=[2] * 6).receptive_field == 190


def test_a_hop_the_strides_cannot_make_is_refused_with_strides_that_would():
    assert ConvEncoder(channels=8, latent_dim=4, hop=64).hop_length == 64
    with pytest.raises(ValueError, match=r"2 × 2 × 2 × 2 × 2 × 2 = 64.*model.encoder.strides=\[5,2,2,2,2,2\]"):
        ConvEncoder(channels=8, latent_dim=4, hop=160)
    with pytest.raises(ValueError, match=r"strides=\[5,2,2,2,2,2,2,2\]"):
        ConvEncoder(channels=8, latent_dim=4, hop=640)
    with pytest.raises(ValueError, match="prime factors are 2, 3 and 5"):
        ConvEncoder(channels=8, latent_dim=4, hop=7 * 16)
    with pytest.raises(ValueError, match="non-empty list"):
        ConvEncoder(channels=8, latent_dim=4, strides=[])
    # a hop that the per-layer strides do make is accepted
    assert ConvEncoder(channels=8, latent_dim=4, strides=[5, 2, 2, 2, 2, 2], hop=160).hop_length == 160


def test_instance_norm_normalises_each_channel_over_the_utterance_and_chunking_stays_exact():
    torch.manual_seed(0)
    enc = ConvEncoder(channels=8, latent_dim=4, instance_norm=True).eval()
    with torch.no_grad():
        enc.net[-1].weight *= 100  # an untrained encoder's output barely varies over time, next to the norm's ε
    wav = (0.3 * torch.randn(2, 1, 64 * 40)).clamp(-1, 1)
    z = enc(wav)
    # the learned affine starts at the identity: zero mean, unit variance per utterance and channel
    torch.testing.assert_close(z.mean(-1), torch.zeros(2, 4), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.var(-1, unbiased=False), torch.ones(2, 4), atol=1e-2, rtol=0)
    # a per-utterance offset of the encoder's output cannot reach the latents
    with torch.no_grad():
        enc.net[-1].bias += 3.0
    torch.testing.assert_close(enc(wav), z, atol=1e-4, rtol=1e-4)
    enc.chunk_frames = 6  # normalised over the whole input, not per chunk
    torch.testing.assert_close(enc(wav), z, atol=1e-4, rtol=1e-4)
