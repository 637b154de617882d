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
