"""The composed VQ-VAE built from plain kwargs: loss terms, an untrained model's loss level, decoding
codes to audio, and the speaker table's errors."""

import math

import pytest
import torch
import torch.nn.functional as F

from vqspeech.data.audio import de_emphasis, mu_law_decode, mu_law_encode, pre_emphasis
from vqspeech.errors import UserError
from vqspeech.models.generation import GenerationConfig
from vqspeech.models import build_model
from vqspeech.models.speaker import SpeakerTable

SPEAKERS = ["p225", "p226", "p227"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def speech_like(batch: int = 2, length: int = 256) -> torch.Tensor:
    """Tensor[B, 1, T] in [-1, 1]: a tone plus noise."""
    t = torch.arange(length) / 16000
    wav = 0.5 * torch.sin(2 * math.pi * 220 * t) + 0.05 * torch.randn(batch, length)
    return wav.clamp(-1, 1)[:, None]


def test_build_model_wires_the_parts_from_kwargs(tiny_model_kwargs):
    model = build_model(tiny_model_kwargs(SPEAKERS))
    assert model.hop_length == 2 ** 3
    assert model.bottleneck.dim == 4 and model.bottleneck.codebook_size == 16
    assert model.decoder.hop_length == model.hop_length
    assert model.speakers.names == SPEAKERS
    # the same kwargs rebuild an identical-shaped model that accepts the first one's state
    build_model(tiny_model_kwargs(SPEAKERS)).load_state_dict(model.state_dict())


@pytest.mark.parametrize("upsample", ["repeat", "linear"])
def test_forward_loss_terms_and_untrained_reconstruction_is_near_uniform(tiny_model_kwargs, upsample):
    kwargs = tiny_model_kwargs(SPEAKERS)
    kwargs["model"]["decoder"]["upsample"] = upsample
    model = build_model(kwargs)
    wav = speech_like()
    out = model(wav, model.speakers.ids(["p225", "p227"]))
    assert set(out.losses) == {"reconstruction", "codebook", "commitment"}
    assert torch.equal(out.target, wav)
    torch.testing.assert_close(out.losses["reconstruction"], F.cross_entropy(out.output, mu_law_encode(wav[:, 0])))
    torch.testing.assert_close(out.reconstruction, out.losses["reconstruction"].detach())
    # an untrained decoder is close to uniform over the 256 μ-law classes
    assert abs(out.losses["reconstruction"].item() - math.log(256)) < 0.3
    assert all(torch.isfinite(v) for v in out.losses.values())
    # every term reaches the parameters it should train
    sum(out.losses.values()).backward()
    for name in ("encoder", "bottleneck", "decoder", "speakers"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


def test_ema_quantizer_drops_the_codebook_term(tiny_model_kwargs):
    kwargs = tiny_model_kwargs(SPEAKERS)
    kwargs["model"]["bottleneck"]["ema_decay"] = 0.99
    model = build_model(kwargs)
    out = model(speech_like(), torch.tensor([0, 1]))
    assert set(out.losses) == {"reconstruction", "commitment"}


@pytest.mark.parametrize("upsample", ["repeat", "linear"])
def test_decode_codes_gives_bounded_audio_of_the_frame_length(tiny_model_kwargs, upsample):
    kwargs = tiny_model_kwargs(SPEAKERS)
    kwargs["model"]["decoder"]["upsample"] = upsample
    model = build_model(kwargs).eval()
    assert model.decoder.upsample == upsample
    codes = [torch.randint(0, 16, (5,)), torch.randint(0, 16, (3,))]
    speakers = torch.tensor([0, 2])
    greedy = GenerationConfig(greedy=True)
    audio = model.decode(codes, speakers, greedy)
    assert [a.shape[0] for a in audio] == [5 * model.hop_length, 3 * model.hop_length]
    levels = mu_law_decode(torch.arange(256))  # every sample is one of the 256 μ-law levels
    for a, b in zip(audio, model.decode(codes, speakers, greedy)):
        assert a.dtype == torch.float32
        assert torch.isin(a, levels).all()
        assert torch.equal(a, b)
    sampled = model.decode(codes, speakers, generator=torch.Generator().manual_seed(0))
    again = model.decode(codes, speakers, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) and torch.isin(a, levels).all() for a, b in zip(sampled, again))
    other = model.decode(codes, speakers, generator=torch.Generator().manual_seed(1))
    assert not all(torch.equal(a, b) for a, b in zip(sampled, other))  # the seed is what draws the samples


def test_encode_then_decode_uses_the_same_codebook_vectors(tiny_model_kwargs):
    model = build_model(tiny_model_kwargs(SPEAKERS)).eval()
    wav = speech_like()
    vq = model.encode(wav)
    assert vq.codes.shape[-1] == wav.shape[-1] // model.hop_length
    torch.testing.assert_close(model.bottleneck.decode(vq.codes), vq.quantized, rtol=0, atol=1e-5)


def test_unknown_speaker_is_a_user_error_listing_the_known_names():
    table = SpeakerTable(SPEAKERS, dim=4)
    assert table.index("p226") == 1
    assert table.ids(["p227", "p225"]).tolist() == [2, 0]
    with pytest.raises(UserError) as excinfo:
        table.index("p999")
    message = str(excinfo.value)
    assert "p999" in message
    for name in SPEAKERS:
        assert name in message
    with pytest.raises(UserError):
        table.ids(["p225", "nobody"])


def test_duplicate_speaker_names_are_rejected():
    with pytest.raises(ValueError):
        SpeakerTable(["a", "b", "a"], dim=2)


def test_time_jitter_replaces_frames_by_a_neighbour_at_rate_p():
    from vqspeech.models.vqvae import time_jitter

    frames = torch.arange(2000, dtype=torch.float)[None, None].expand(3, 2, -1)  # value = frame index
    g = torch.Generator().manual_seed(0)
    out = time_jitter(frames, 0.3, g)
    moved = out[:, 0] - frames[:, 0]
    assert set(moved.unique().tolist()) <= {-1.0, 0.0, 1.0}  # a neighbour or itself, never further
    assert torch.equal(out[:, 0], out[:, 1])                  # all D channels of a frame move together
    assert abs((moved != 0).float().mean().item() - 0.3) < 0.02
    assert abs((moved == -1).float().mean().item() - 0.15) < 0.02
    assert torch.equal(time_jitter(frames, 0.0, g), frames)
    edge = time_jitter(torch.arange(2.0)[None, None], 0.5, g)
    assert edge.shape == (1, 1, 2) and set(edge.flatten().tolist()) <= {0.0, 1.0}


def test_jitter_applies_in_training_only_and_is_range_checked(tiny_model_kwargs):
    base = tiny_model_kwargs(SPEAKERS)
    kwargs = {**base, "model": {**base["model"], "jitter": 0.5}}
    model = build_model(kwargs)
    wav = (0.3 * torch.randn(1, 1, 8 * 64)).clamp(-1, 1)
    model.eval()
    torch.testing.assert_close(model(wav, torch.tensor([0])).output, model(wav, torch.tensor([0])).output)
    with pytest.raises(ValueError, match=r"model.jitter must lie in \[0, 0.5\]"):
        build_model({**kwargs, "model": {**kwargs["model"], "jitter": 0.7}})


def test_pre_emphasis_is_inverted_by_de_emphasis_and_is_off_at_zero():
    torch.testing.assert_close(pre_emphasis(torch.tensor([1.0, 2.0, 3.0]), 0.5), torch.tensor([1.0, 1.5, 2.0]))
    torch.testing.assert_close(de_emphasis(torch.tensor([1.0, 1.5, 2.0]), 0.5), torch.tensor([1.0, 2.0, 3.0]))
    x = speech_like(2, 512)[:, 0].double()
    for alpha in (0.5, 0.85, 0.97):
        torch.testing.assert_close(de_emphasis(pre_emphasis(x, alpha), alpha), x)
    assert pre_emphasis(x, 0.0) is x and de_emphasis(x, 0.0) is x


def test_a_pre_emphasised_model_predicts_the_emphasised_signal_and_generates_de_emphasised(tiny_model_kwargs):
    base = tiny_model_kwargs(SPEAKERS)
    plain = build_model(base).eval()
    emphasised = build_model({**base, "model": {**base["model"], "preemphasis": 0.85}}).eval()
    emphasised.load_state_dict(plain.state_dict())
    wav = speech_like(1, 512)
    assert torch.equal(emphasised.target_signal(wav), pre_emphasis(wav, 0.85))
    assert torch.equal(plain.target_signal(wav), wav)
    out = emphasised(wav, torch.tensor([1]))
    torch.testing.assert_close(out.losses["reconstruction"],
                               F.cross_entropy(out.output, mu_law_encode(pre_emphasis(wav[:, 0], 0.85))))
    codes, speaker = [torch.randint(0, 16, (6,))], torch.tensor([1])
    generated = plain.decode(codes, speaker, generator=torch.Generator().manual_seed(0))[0]
    heard = emphasised.decode(codes, speaker, generator=torch.Generator().manual_seed(0))[0]
    torch.testing.assert_close(heard, de_emphasis(generated, 0.85).clamp(-1, 1))
    with pytest.raises(ValueError, match=r"model.preemphasis must lie in \[0, 1\)"):
        build_model({**base, "model": {**base["model"], "preemphasis": 1.0}})


@pytest.mark.parametrize("upsample", ["repeat", "linear"])
@pytest.mark.parametrize("hop", [2, 4, 5, 16])
def test_the_decoder_depends_on_as_many_codes_as_its_receptive_field_in_codes_says(hop, upsample):
    from vqspeech.models.wavenet import WaveNetDecoder

    torch.manual_seed(0)
    decoder = WaveNetDecoder(latent_dim=3, speaker_dim=2, hop_length=hop, residual_channels=4, skip_channels=4,
                             cond_channels=4, layers_per_stack=3, stacks=1, upsample=upsample)  # 8 samples
    frames = 12
    latents = torch.randn(1, 3, frames, requires_grad=True)
    samples = torch.randint(0, 256, (1, frames * hop))
    logits = decoder(samples, latents, torch.randn(1, 2))
    reached = []
    for t in range(6 * hop, 7 * hop):  # every position within one frame, well inside the utterance
        (grad,) = torch.autograd.grad(logits[0, :, t].sum(), latents, retain_graph=True)
        reached.append(int((grad.abs().sum(1)[0] > 0).sum()))
    assert max(reached) == decoder.receptive_field_codes  # conditioning of 7 positions: ceil(6 / hop) + 1, ±1
    # linear upsampling mixes in the neighbour frame: one code more, except at an odd hop where every window
    # whose ends both reach outwards is too short (hop 5, 7 positions: none reaches a sixth code)
    assert decoder.receptive_field_codes == {"repeat": {2: 6, 4: 5, 5: 5, 16: 4},
                                             "linear": {2: 7, 4: 6, 5: 5, 16: 5}}[upsample][hop]
