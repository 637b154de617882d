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
