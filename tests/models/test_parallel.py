"""The parallel decoder and the decoder interface: exact chunked decoding, the reach its context assumes, the
inverse-STFT head, the spectral losses on exact cases, the speaker's FiLM, and the decoder kinds' options."""

import math

import pytest
import torch

from vqspeech.models import build_model
from vqspeech.models.builders import decoder_options
from vqspeech.models.parallel import ParallelDecoder
from vqspeech.nn.spectral_loss import MultiResolutionSTFTLoss, MultiScaleMelLoss

HOP = 16


def small_decoder(**options) -> ParallelDecoder:
    torch.manual_seed(0)
    settings = dict(channels=16, blocks=3, dilations=[1, 2], n_fft=64, stft_resolutions=[[64, 16], [128, 32]],
                    mel_scales=[[64, 16]], chunk_frames=50)
    settings.update(options)
    return ParallelDecoder(latent_dim=4, speaker_dim=3, hop_length=HOP, **settings).eval()


def tone(length: int, frequency: float = 440.0, sample_rate: int = 16000) -> torch.Tensor:
    t = torch.arange(length) / sample_rate
    return (0.5 * torch.sin(2 * math.pi * frequency * t))[None, None]


@pytest.mark.parametrize("n_fft", [64, 72, 100])  # 4 × hop, and two that are not multiples of it
@pytest.mark.parametrize("chunk", [1, 7, 50, 199])
def test_a_chunked_decode_equals_the_one_pass_decode(chunk, n_fft):
    decoder = small_decoder(n_fft=n_fft, chunk_frames=chunk)
    with torch.no_grad():
        for block in decoder.blocks:  # a speaker that matters
            block.film.weight.normal_(std=0.3)
    latents, speaker = torch.randn(1, 4, 200), torch.randn(1, 3)
    with torch.no_grad():
        whole = decoder(latents, speaker)
    chunked = decoder.generate([latents[0]], speaker, None)[0]  # the path every command takes
    assert chunked.shape == (200 * HOP,)
    torch.testing.assert_close(chunked, whole[0, 0].clamp(-1, 1), rtol=0, atol=1e-6)


def test_chunks_with_less_context_than_the_reach_do_not_match(monkeypatch):
    decoder = small_decoder()
    latents, speaker = torch.randn(1, 4, 200), torch.randn(1, 3)
    with torch.no_grad():
        whole = decoder(latents, speaker)
        monkeypatch.setattr(ParallelDecoder, "context_frames", property(lambda self: self.reach_frames // 2))
        short = decoder.decode_chunked(latents, speaker, 50)
    assert (short - whole).abs().max() > 1e-4  # so the equality above is the context's doing


def test_a_frame_depends_on_exactly_reach_frames_codes_either_side():
    decoder = small_decoder()  # kernel 7, dilations 1, 2, 1: reach 3 + 3 · 4 = 15
    assert decoder.reach_frames == 3 + 3 * sum(decoder.dilations) == 15
    latents = torch.randn(1, 4, 60, requires_grad=True)
    columns = decoder.columns(latents, torch.randn(1, 3))
    (grad,) = torch.autograd.grad(columns[0, 30].sum(), latents)
    reached = (grad.abs().sum(1)[0] > 0).nonzero().flatten()
    assert (reached.min().item(), reached.max().item()) == (30 - 15, 30 + 15)


def test_the_head_inverts_an_exact_stft():
    decoder = small_decoder()
    wav = tone(40 * HOP) + 0.01 * torch.randn(1, 1, 40 * HOP)
    spec = torch.stft(wav[:, 0], decoder.n_fft, HOP, window=torch.hann_window(decoder.n_fft), center=True,
                      return_complex=True)[..., :40]  # [1, bins, 40]: one column per frame
    columns = torch.cat([spec.abs().clamp(min=1e-12).log(), spec.angle()], dim=1).transpose(1, 2)
    audio = decoder.inverse_stft(columns, 40)
    # every sample but the last n_fft / 2 (whose later columns were cut off) comes back
    keep = 40 * HOP - decoder.n_fft // 2
    torch.testing.assert_close(audio[..., :keep], wav[..., :keep], rtol=0, atol=1e-5)


def test_stft_loss_exact_cases():
    loss = MultiResolutionSTFTLoss([(64, 16), (128, 32)])
    target = tone(2048) + 0.05 * torch.randn(1, 1, 2048)
    assert loss(target, target).item() == 0.0
    # half the amplitude: convergence ‖|Y| − |Y|/2‖ / ‖|Y|‖ = 1/2 and every log magnitude off by ln 2
    torch.testing.assert_close(loss(target / 2, target), torch.tensor(0.5 + math.log(2)), rtol=1e-4, atol=0)


def test_mel_loss_exact_cases():
    loss = MultiScaleMelLoss(16000, [(64, 16), (256, 32)])
    target = tone(2048) + 0.05 * torch.randn(1, 1, 2048)
    assert loss(target, target).item() == 0.0
    torch.testing.assert_close(loss(2 * target, target), torch.tensor(math.log10(2)), rtol=1e-4, atol=0)


def test_the_speaker_acts_through_film_which_starts_as_the_identity():
    decoder = small_decoder()
    latents = torch.randn(1, 4, 30)
    one, other = torch.randn(1, 3), torch.randn(1, 3)
    with torch.no_grad():
        torch.testing.assert_close(decoder(latents, one), decoder(latents, other))  # FiLM is zero at first
    target = tone(30 * HOP)
    decoder.train()
    decoder.loss(target, latents, one).losses["stft"].backward()
    assert all(block.film.weight.grad.abs().sum() > 0 for block in decoder.blocks)
    with torch.no_grad():
        for block in decoder.blocks:
            block.film.weight.normal_()
        assert (decoder(latents, one) - decoder(latents, other)).abs().max() > 1e-3


def test_a_parallel_vqvae_trains_on_spectral_terms_and_decodes_deterministically(tiny_model_kwargs):
    kwargs = tiny_model_kwargs(["a", "b"])
    kwargs["model"]["decoder"] = {**kwargs["model"]["decoder"], "kind": "parallel", "channels": 8, "blocks": 2,
                                  "n_fft": 32, "stft_resolutions": [[32, 8], [64, 16]], "mel_scales": [[64, 16]]}
    model = build_model(kwargs)
    assert model.decoder.kind == "parallel" and not model.decoder.stochastic
    wav = (tone(64 * 8) + 0.05 * torch.randn(2, 1, 64 * 8)).clamp(-1, 1)
    out = model(wav, torch.tensor([0, 1]))
    assert set(out.losses) == {"stft", "mel", "codebook", "commitment"}
    torch.testing.assert_close(out.reconstruction, (out.losses["stft"] + out.losses["mel"]).detach())
    assert out.output.shape == wav.shape
    sum(out.losses.values()).backward()
    for name in ("encoder", "bottleneck", "decoder"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters()), name
    model.eval()
    codes = [torch.randint(0, 16, (9,)), torch.randint(0, 16, (4,))]
    first = model.decode(codes, torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    second = model.decode(codes, torch.tensor([0, 1]), generator=torch.Generator().manual_seed(1))
    assert [a.shape[0] for a in first] == [9 * 8, 4 * 8]
    assert all(torch.equal(a, b) and a.abs().max() <= 1.0 for a, b in zip(first, second))


def test_decoder_options_keep_their_kinds_own_and_name_the_choices():
    spec = {"kind": "parallel", "residual_channels": 48, "channels": 32, "blocks": 2}
    assert decoder_options(spec) == {"kind": "parallel", "channels": 32, "blocks": 2}
    assert decoder_options({"residual_channels": 48}) == {"kind": "wavenet", "residual_channels": 48}
    with pytest.raises(ValueError, match="model.decoder.kind must be one of wavenet, parallel, got 'hifigan'"):
        decoder_options({"kind": "hifigan"})
    with pytest.raises(ValueError, match="model.decoder has no option widht"):
        decoder_options({"kind": "parallel", "widht": 3})
    with pytest.raises(ValueError, match="block_kernel must be odd"):
        small_decoder(block_kernel=4)
    with pytest.raises(ValueError, match=r"n_fft=48 must be at least 4 × the hop \(16\)"):
        small_decoder(n_fft=48)


def test_a_checkpoint_from_before_the_decoder_kinds_loads_resumes_and_refuses_the_other_decoder(tiny_config,
                                                                                                 tmp_path):
    from vqspeech.checkpoint import load_checkpoint, model_from_checkpoint
    from vqspeech.errors import UserError
    from vqspeech.training import train

    run_dir = tmp_path / "run"
    train(tiny_config(run_dir=run_dir), progress=False)
    path = run_dir / "checkpoints" / "last.pt"
    payload = torch.load(path, map_location="cpu", weights_only=True)
    del payload["model_kwargs"]["model"]["decoder"]["kind"]  # as written before there were two decoders
    torch.save(payload, path)
    model = model_from_checkpoint(load_checkpoint(path))
    assert model.decoder.kind == "wavenet"
    state = model.state_dict()
    assert all(torch.equal(state[k], payload["model"][k]) for k in payload["model"])
    assert train(tiny_config("train.max_steps=3", run_dir=run_dir), progress=False).step == 3
    with pytest.raises(UserError, match=r"differs at 'model\.decoder\.\w+'"):
        train(tiny_config("decoder=parallel", "train.max_steps=4", run_dir=run_dir), progress=False)
