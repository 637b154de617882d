"""The prior's properties: causal, its cached steps equal its parallel pass, exact bits on a hand case,
argmax sampling at temperature 0, and the speaker condition that dropout leaves optional."""

import math

import pytest
import torch

from vqspeech.codes import CodeSplit
from vqspeech.eval.prior import evaluate_prior, merged_units, unigram_bits
from vqspeech.models.prior import build_prior, prior_kwargs
from vqspeech.sampling import histogram_kl, mean_run_length, sample_codes

SPECS = {
    "wavenet": {"kind": "wavenet", "channels": 8, "skip_channels": 8, "layers": 3, "speaker_dim": 4},
    "transformer": {"kind": "transformer", "dim": 16, "layers": 2, "heads": 2, "context": 8, "dropout": 0.0,
                    "speaker_dim": 4},
}


def make_prior(kind, size=12, speakers=("a", "b"), vector_dim=None, seed=0):
    torch.manual_seed(seed)
    return build_prior(prior_kwargs(SPECS[kind], size, speakers, vector_dim, "0" * 16)).double().eval()


@pytest.mark.parametrize("kind", SPECS)
def test_changing_code_t_changes_no_prediction_up_to_t(kind):
    prior = make_prior(kind)
    codes = torch.randint(0, 12, (1, 30), generator=torch.Generator().manual_seed(1))
    speaker = torch.tensor([1])
    before = prior(prior.inputs(codes), speaker)
    for t in (0, 7, 17, 29):
        changed = codes.clone()
        changed[0, t] = (changed[0, t] + 5) % 12
        after = prior(prior.inputs(changed), speaker)
        assert torch.equal(before[..., : t + 1], after[..., : t + 1])  # output t predicts code t from codes < t
        if t < 29:
            assert not torch.allclose(before[..., t + 1], after[..., t + 1])


@pytest.mark.parametrize("kind", SPECS)
@pytest.mark.parametrize("speaker", [torch.tensor([0, 1]), None])
def test_cached_steps_equal_the_parallel_pass(kind, speaker):
    prior = make_prior(kind)
    codes = torch.randint(0, 12, (2, 25), generator=torch.Generator().manual_seed(2))  # > 3 transformer windows
    parallel = torch.log_softmax(prior(prior.inputs(codes), speaker), dim=1)  # [B, K, F]
    stepper = prior.stepper(speaker, 2)
    previous = torch.full((2,), prior.bos)
    for t in range(codes.shape[1]):
        step = torch.log_softmax(stepper.step(previous), dim=-1)
        torch.testing.assert_close(step, parallel[..., t], rtol=0, atol=1e-10)
        previous = codes[:, t]


def test_receptive_field_is_what_the_recipe_says():
    prior = build_prior(prior_kwargs({"kind": "wavenet"}, 256, ["a"], None, "h"))
    assert prior.receptive_field == 511  # kernel 3, dilations 1 … 128: about 2 s of codes at 250 Hz


def _constant_prior(probabilities):
    """A WaveNet prior whose every prediction is ``probabilities`` (the head's last bias, its weight 0)."""
    prior = make_prior("wavenet", size=len(probabilities))
    head = prior.head[-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor(probabilities, dtype=torch.float64).log())
    return prior


def test_bits_per_code_match_a_hand_computation():
    prior = _constant_prior([1 / 2, 1 / 4, 1 / 8, 1 / 8])
    codes = [torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 1, 1])]
    split = CodeSplit(codes=codes, speaker_ids=[0, 1], utterances=["a/1", "b/1"], speakers=["a", "b"],
                      speaker_vectors=None, codebook_size=4, frame_rate=100.0, checkpoint_hash="h")
    report = evaluate_prior(prior, split)
    # −log2 p: 1 + 2 + 3 + 3 and 1 + 1 + 2 + 2 = 15 bits over 8 codes
    assert report.bits_per_code == pytest.approx(15 / 8, abs=1e-12)
    assert report.bits_per_second == pytest.approx(15 / 8 * 100)
    assert report.unconditioned_bits_per_code == pytest.approx(15 / 8, abs=1e-12)  # the bias ignores the voice
    assert report.speaker_gap_bits_per_second == pytest.approx(0.0, abs=1e-9)
    # histogram 3, 3, 1, 1 of 8
    assert report.unigram_bits_per_code == pytest.approx(-(2 * 3 / 8 * math.log2(3 / 8) + 2 / 8 * math.log2(1 / 8)))
    assert report.nominal_bits_per_second == pytest.approx(200.0)
    assert report.bits_per_merged_unit == pytest.approx(15 / (4 + 2))  # runs: 0 1 2 3 | 0 1


def test_merged_units_runs_and_histogram_kl():
    assert merged_units(torch.tensor([3, 3, 1, 1, 1, 3])) == 3
    assert merged_units(torch.tensor([], dtype=torch.long)) == 0
    assert mean_run_length([torch.tensor([3, 3, 1, 1, 1, 3])]) == 2.0
    counts = torch.tensor([5.0, 3.0, 0.0])
    assert histogram_kl(counts, counts) == pytest.approx(0.0)
    assert histogram_kl(counts, torch.tensor([0.0, 3.0, 5.0])) > 0.5
    assert unigram_bits(CodeSplit([torch.tensor([0, 1, 2, 3])], [0], ["a/1"], ["a"], None, 4, 1.0, "h")) == 2.0


@pytest.mark.parametrize("kind", SPECS)
def test_temperature_zero_is_the_argmax_sequence(kind):
    prior = make_prior(kind)
    speaker = torch.tensor([0, 1])
    greedy = sample_codes(prior, 20, 2, speaker, temperature=0.0)
    logits = prior(prior.inputs(greedy), speaker)
    assert torch.equal(greedy, logits.argmax(1))
    cold = sample_codes(prior, 20, 2, speaker, temperature=1e-4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(cold, greedy)  # the limit T -> 0


def test_a_prompt_is_kept_and_continued():
    prior = make_prior("wavenet")
    prompt = torch.tensor([4, 4, 7])
    out = sample_codes(prior, 10, 3, torch.tensor([0, 0, 1]), 1.0, prompt, torch.Generator().manual_seed(0))
    assert out.shape == (3, 10) and torch.equal(out[:, :3], prompt.expand(3, -1))
    with pytest.raises(ValueError, match="prompt"):
        sample_codes(prior, 3, 1, None, 1.0, prompt)


def test_the_speaker_condition_matters_and_is_optional():
    prior = make_prior("wavenet")
    codes = torch.randint(0, 12, (1, 15))
    a, b, none = (prior.log_probs(codes, s) for s in (torch.tensor([0]), torch.tensor([1]), None))
    assert not torch.allclose(a, b) and not torch.allclose(a, none)
    assert torch.equal(none, prior.log_probs(codes, torch.tensor([-1])))  # −1: no speaker
    vectors = make_prior("wavenet", vector_dim=5)
    v = torch.nn.functional.normalize(torch.randn(1, 5, dtype=torch.float64), dim=-1)
    assert torch.equal(vectors.log_probs(codes, None), vectors.log_probs(codes, torch.zeros(1, 5, dtype=torch.float64)))
    assert not torch.allclose(vectors.log_probs(codes, v), vectors.log_probs(codes, None))


def test_bad_prior_options_are_refused():
    with pytest.raises(ValueError, match="prior.kind"):
        build_prior(prior_kwargs({"kind": "lstm"}, 8, ["a"], None, "h"))
    with pytest.raises(ValueError, match="context"):
        build_prior(prior_kwargs({"kind": "transformer", "context": 7}, 8, ["a"], None, "h"))
    with pytest.raises(TypeError):
        build_prior(prior_kwargs({"kind": "wavenet", "heads": 2}, 8, ["a"], None, "h"))
