"""Generation: cached steps reproduce the teacher-forced network; batching and folding keep it exact."""

import pytest
import torch

from vqspeech.data.audio import mu_law_encode
from vqspeech.models.generation import (Conditioning, GenerationConfig, IncrementalWaveNet, _segments, generate,
                                        with_context)
from vqspeech.models.wavenet import SILENCE, WaveNetDecoder, interpolate_frames

HOP = 4
LATENT, SPEAKER = 5, 3
GREEDY = GenerationConfig(greedy=True)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def decoder(kernel_size: int = 2, upsample: str = "repeat", hop: int = HOP) -> WaveNetDecoder:
    return WaveNetDecoder(latent_dim=LATENT, speaker_dim=SPEAKER, hop_length=hop, residual_channels=8,
                          skip_channels=12, cond_channels=10, kernel_size=kernel_size, layers_per_stack=3,
                          stacks=2, upsample=upsample).eval()


def conditioning(dec, n_frames: int, batch: int = 1) -> torch.Tensor:
    with torch.no_grad():
        return dec.conditioning(torch.randn(batch, LATENT, n_frames), torch.randn(batch, SPEAKER))


@pytest.mark.parametrize(("kernel_size", "upsample", "hop"), [(2, "repeat", HOP), (3, "repeat", HOP),
                                                             (2, "linear", HOP), (3, "linear", 5)])
def test_cached_steps_reproduce_teacher_forced_logits(kernel_size, upsample, hop):
    dec = decoder(kernel_size, upsample, hop)
    samples = torch.randint(0, 256, (2, 6 * hop))
    latents, speaker = torch.randn(2, LATENT, 6), torch.randn(2, SPEAKER)
    with torch.no_grad():
        full = dec(samples, latents, speaker)
        net = IncrementalWaveNet(dec)
        net.start(dec.conditioning(latents, speaker))
        previous = torch.full((2,), SILENCE, dtype=torch.long)
        stepped = []
        for t in range(samples.shape[1]):
            stepped.append(net.step(previous))
            previous = samples[:, t]
    torch.testing.assert_close(torch.stack(stepped, dim=-1), full, rtol=0, atol=1e-5)


def test_greedy_output_is_the_argmax_of_its_own_teacher_forced_logits():
    dec = decoder()
    latents, speaker = torch.randn(1, LATENT, 5), torch.randn(1, SPEAKER)
    with torch.no_grad():
        wav = generate(dec, [dec.conditioning(latents, speaker)[0]], GREEDY)[0]
        samples = mu_law_encode(wav)[None]
        assert torch.equal(dec(samples, latents, speaker).argmax(1), samples)


def test_sampling_is_reproducible_with_a_seeded_generator():
    dec = decoder()
    cond = [conditioning(dec, 4)[0]]
    a, b, c = (generate(dec, cond, GenerationConfig(), torch.Generator().manual_seed(s))[0] for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="temperature"):
        GenerationConfig(temperature=0.0)


@pytest.mark.parametrize("upsample", ["repeat", "linear"])
def test_a_batch_of_different_lengths_equals_each_utterance_alone(upsample):
    dec = decoder(upsample=upsample)
    conds = [conditioning(dec, n)[0] for n in (7, 3, 5)]
    together = generate(dec, conds, GREEDY)
    for cond, out in zip(conds, together):
        assert out.shape == (cond.shape[-1] * HOP,)
        assert torch.equal(out, generate(dec, [cond], GREEDY)[0])


def test_folding_with_one_segment_equals_unfolded_generation():
    dec = decoder()
    cond = [conditioning(dec, 9)[0]]
    unfolded = generate(dec, cond, GREEDY)[0]
    for segment in (9, 20):
        folded = generate(dec, cond, GenerationConfig(greedy=True, segment_frames=segment, overlap_frames=2))[0]
        assert torch.equal(folded, unfolded)
    sampled = [generate(dec, cond, GenerationConfig(segment_frames=s), torch.Generator().manual_seed(3))[0]
               for s in (None, 9)]
    assert torch.equal(*sampled)


def test_folded_segments_without_overlap_are_independent_generations():
    dec = decoder()
    cond = conditioning(dec, 10)[0]
    folded = generate(dec, [cond], GenerationConfig(greedy=True, segment_frames=4, overlap_frames=0))[0]
    assert folded.shape == (10 * HOP,)
    for start, end in [(0, 4), (4, 8), (8, 10)]:
        alone = generate(dec, [cond[..., start:end]], GREEDY)[0]
        assert torch.equal(folded[start * HOP:end * HOP], alone)


def test_with_context_adds_the_neighbour_frames_and_repeats_the_utterance_edges():
    cond = torch.arange(5.0)[None].expand(2, -1)  # [2, 5]: frame f holds f
    assert with_context(cond, 0, 5)[0].tolist() == [0, 0, 1, 2, 3, 4, 4]
    assert with_context(cond, 0, 3)[0].tolist() == [0, 0, 1, 2, 3]
    assert with_context(cond, 2, 5)[0].tolist() == [1, 2, 3, 4, 4]
    assert with_context(cond, 1, 2)[0].tolist() == [0, 1, 2]
    dec = decoder(upsample="linear")
    latents, speaker = torch.randn(LATENT, 7), torch.randn(SPEAKER)
    with torch.no_grad():
        whole = dec.conditioning(latents[None], speaker[None])[0]
        for start, end in [(0, 7), (2, 5), (6, 7)]:
            torch.testing.assert_close(with_context(Conditioning(dec, latents, speaker), start, end),
                                       with_context(whole, start, end), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("start", "end"), [(0, 4), (3, 7), (6, 9)])
def test_a_segment_with_context_steps_through_the_whole_utterances_interpolated_conditioning(start, end):
    hop = 5
    dec = decoder(upsample="linear", hop=hop)
    latents, speaker = torch.randn(1, LATENT, 9), torch.randn(1, SPEAKER)
    piece = torch.randint(0, 256, (1, (end - start) * hop))
    with torch.no_grad():
        whole = dec.conditioning(latents, speaker)  # [1, L, 2C, 9]
        # the segment teacher-forced alone, through the whole utterance's conditioning at sample rate
        x = dec.input_embedding(torch.cat([torch.full((1, 1), SILENCE), piece[:, :-1]], 1)).transpose(1, 2)
        skips = 0
        for i, block in enumerate(dec.blocks):
            x, skip = block(x, interpolate_frames(whole[:, i], hop)[..., start * hop:end * hop], 1)
            skips = skips + skip
        net = IncrementalWaveNet(dec)
        net.start(with_context(whole[0], start, end)[None], context=True)
        previous, stepped = torch.full((1,), SILENCE, dtype=torch.long), []
        for t in range(piece.shape[1]):
            stepped.append(net.step(previous))
            previous = piece[:, t]
    torch.testing.assert_close(torch.stack(stepped, -1), dec.head(skips), rtol=0, atol=1e-5)


@pytest.mark.parametrize("upsample", ["repeat", "linear"])
def test_linear_upsampling_folds_with_the_true_neighbours_at_segment_edges(upsample):
    """A segment's edge samples mix in the frame beyond it under linear upsampling, so its segments (without
    overlap) are not the generations of their frames alone, whose edge frames are repeated instead; under
    repetition they are."""
    dec = decoder(upsample=upsample)
    dec.input_embedding.weight.data.zero_()  # samples then follow the conditioning, not their own past
    dec.head[-1].bias.data.zero_()  # so that no one level wins everywhere
    with torch.no_grad():
        cond = dec.conditioning(3 * torch.randn(1, LATENT, 24), torch.randn(1, SPEAKER))[0]
    folded = generate(dec, [cond], GenerationConfig(greedy=True, segment_frames=3, overlap_frames=0))[0]
    apart = torch.cat(generate(dec, [cond[..., f:f + 3] for f in range(0, 24, 3)], GREEDY))
    assert len(mu_law_encode(folded).unique()) > 2
    assert torch.equal(folded, apart) == (upsample == "repeat")


def test_folded_overlap_is_a_linear_cross_fade_of_neighbouring_segments():
    dec = decoder()
    cond = conditioning(dec, 10)[0]
    config = GenerationConfig(greedy=True, segment_frames=5, overlap_frames=1)
    folded = generate(dec, [cond], config)[0]
    first = generate(dec, [cond[..., 0:5]], GREEDY)[0]
    second = generate(dec, [cond[..., 3:10]], GREEDY)[0]  # starts 2·overlap before its share, at frame 3
    assert torch.equal(folded[:4 * HOP], first[:4 * HOP])
    ramp = torch.linspace(0, 1, HOP + 2)[1:-1]
    torch.testing.assert_close(folded[4 * HOP:5 * HOP], (1 - ramp) * first[4 * HOP:] + ramp * second[HOP:2 * HOP])
    assert torch.equal(folded[5 * HOP:], second[2 * HOP:])


def test_segments_cover_the_utterance():
    config = GenerationConfig(segment_frames=4, overlap_frames=1)
    assert _segments(3, config) == [(0, 0, 3)]
    assert _segments(10, config) == [(0, 0, 4), (2, 3, 8), (6, 7, 10)]


def test_generating_in_several_batches_equals_one_batch():
    dec = decoder()
    conds = [conditioning(dec, n)[0] for n in (9, 4)]
    one = generate(dec, conds, GenerationConfig(greedy=True, segment_frames=3, overlap_frames=1))
    several = generate(dec, conds, GenerationConfig(greedy=True, segment_frames=3, overlap_frames=1, max_batch=2))
    assert all(torch.equal(a, b) for a, b in zip(one, several))
    with pytest.raises(ValueError, match="max_batch"):
        GenerationConfig(max_batch=0)


def test_conditioning_of_a_frame_range_equals_the_slice_of_the_whole():
    dec = decoder()
    latents, speaker = torch.randn(2, LATENT, 9), torch.randn(2, SPEAKER)
    with torch.no_grad():
        whole = dec.conditioning(latents, speaker)
        for start, end in [(0, 9), (0, 1), (3, 6), (8, 9), (4, 4)]:
            torch.testing.assert_close(dec.conditioning(latents, speaker, start, end), whole[..., start:end],
                                       rtol=0, atol=1e-6)
            lazy = Conditioning(dec, latents[1], speaker[1])
            torch.testing.assert_close(lazy[..., start:end], whole[1, ..., start:end], rtol=0, atol=1e-6)


@pytest.mark.parametrize("upsample", ["repeat", "linear"])
def test_generation_from_lazy_conditioning_equals_generation_from_the_whole(upsample):
    dec = decoder(upsample=upsample)
    latents, speaker = torch.randn(LATENT, 11), torch.randn(SPEAKER)
    with torch.no_grad():
        whole = dec.conditioning(latents[None], speaker[None])[0]
    config = GenerationConfig(greedy=True, segment_frames=3, overlap_frames=1, max_batch=2)
    expected = generate(dec, [whole], config)[0]
    assert torch.equal(generate(dec, [Conditioning(dec, latents, speaker)], config)[0], expected)


def test_top_p_draws_only_from_the_nucleus_and_one_keeps_the_distribution():
    from vqspeech.models.generation import draw

    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05] + [0.0] * 252])
    logits = torch.log(probs.clamp(min=1e-12)).expand(4000, -1)
    g = torch.Generator().manual_seed(0)
    nucleus = draw(logits, GenerationConfig(top_p=0.8), g)
    assert set(nucleus.tolist()) == {0, 1}  # 0.5 + 0.3 reaches 0.8: levels 2 and 3 are cut
    assert abs((nucleus == 0).float().mean().item() - 0.5 / 0.8) < 0.03  # renormalised within the nucleus
    tiny = draw(logits, GenerationConfig(top_p=1e-3), g)
    assert set(tiny.tolist()) == {0}  # the most likely level is always kept
    full = draw(logits, GenerationConfig(), g)
    assert abs((full == 3).float().mean().item() - 0.05) < 0.015


@pytest.mark.parametrize("options", [{"top_p": 0.0}, {"top_p": 1.5}, {"temperature": 0.0}])
def test_bad_sampling_settings_are_refused(options):
    with pytest.raises(ValueError, match="top_p|temperature"):
        GenerationConfig(**options)


def test_conditional_sampling_sharpens_only_where_the_generated_audio_is_loud():
    from vqspeech.models.generation import _Loudness, draw

    loudness = _Loudness(rows=2, hop=4, config=GenerationConfig(loud_temperature=0.5, loud_db=-30.0),
                         device=torch.device("cpu"))
    loud, quiet = mu_law_encode(torch.tensor([0.5])).item(), mu_law_encode(torch.tensor([0.0])).item()
    for _ in range(20):
        loudness.update(torch.tensor([loud, quiet]))
    temperature = loudness.temperature()
    assert temperature[:, 0].tolist() == [0.5, 1.0]
    # at temperature → 0 the draw is the argmax; at 1 it follows the distribution
    logits = torch.tensor([[0.0, 1.0, 0.5] + [-9.0] * 253] * 2)
    g = torch.Generator().manual_seed(0)
    sharp = [draw(logits, GenerationConfig(), g, torch.tensor([[1e-3], [1.0]])) for _ in range(200)]
    assert all(s[0] == 1 for s in sharp) and len({s[1].item() for s in sharp}) > 1
    # off by default; with a threshold no audio reaches, conditional sampling is plain sampling
    dec = decoder()
    cond = [conditioning(dec, 4)[0]]
    plain = generate(dec, cond, GenerationConfig(), torch.Generator().manual_seed(5))[0]
    never = GenerationConfig(loud_temperature=0.1, loud_db=-0.001)
    assert torch.equal(generate(dec, cond, never, torch.Generator().manual_seed(5))[0], plain)
    assert never.describe() == "temperature 1, top-p 1, temperature 0.1 above -0.001 dBFS"
    with pytest.raises(ValueError, match="loud temperature must be positive"):
        GenerationConfig(loud_temperature=0.0)
