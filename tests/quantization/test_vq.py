"""The shared VQ layer: nearest-code search, straight-through gradient, loss terms, EMA arithmetic,
dead-code restart, data initialisation, usage metrics, and robustness to NaN and autocast."""

import math

import pytest
import torch

from vqspeech.quantization import VectorQuantizer
from vqspeech.quantization.kmeans import kmeans, nearest_codes, squared_distances


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def frames(rows: torch.Tensor) -> torch.Tensor:
    """Rows [N, D] as a single-utterance batch z [1, D, N] (frame n = row n)."""
    return rows.t().unsqueeze(0).contiguous()


def rows_of(z: torch.Tensor) -> torch.Tensor:
    """z [B, D, F] -> rows [B*F, D] in the quantiser's frame order."""
    return z.permute(0, 2, 1).reshape(-1, z.shape[1])


def set_codebook(vq: VectorQuantizer, codebook: torch.Tensor) -> None:
    """Put a hand-made codebook in place, with the EMA buffers it would have had from construction."""
    with torch.no_grad():
        vq.codebook.copy_(codebook)
        if vq.uses_ema:
            vq.embed_sum.copy_(codebook)
            vq.cluster_size.fill_(1.0)


def is_row_of(vectors: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """BoolTensor[M]: vectors[m] equals (exactly) some row of pool."""
    return (vectors[:, None, :] == pool[None, :, :]).all(-1).any(-1)


# ---- nearest-code search ------------------------------------------------------------------------


def test_picks_the_euclidean_nearest_code_not_the_largest_dot_product():
    vq = VectorQuantizer(dim=2, codebook_size=3)
    set_codebook(vq, torch.tensor([[10.0, 0.0], [1.0, 0.0], [0.0, -3.0]]))
    x = torch.tensor([
        [1.0, 0.0],    # dot products (10, 1, 0): the largest is code 0, the nearest is code 1
        [9.0, 1.0],    # code 0
        [0.5, -2.0],   # code 2 (distances 92.25, 4.25, 1.25)
        [2.0, 0.5],    # code 1, although x·e0 = 20 is by far the largest dot product
    ])
    vq.eval()
    result = vq(frames(x))
    assert result.codes.tolist() == [[1, 0, 2, 1]]
    assert int((x @ vq.codebook.detach().t()).argmax(1)[0]) == 0  # the case really separates the two


def test_codes_are_the_brute_force_argmin_over_a_random_codebook():
    vq = VectorQuantizer(dim=5, codebook_size=13).eval()
    z = torch.randn(3, 5, 7)
    result = vq(z)
    flat = rows_of(z)
    brute = ((flat[:, None, :] - vq.codebook.detach()[None]) ** 2).sum(-1).argmin(1)
    assert torch.equal(result.codes.reshape(-1), brute)


def test_squared_distances_equal_brute_force():
    x = torch.randn(7, 5, dtype=torch.float64)
    e = torch.randn(11, 5, dtype=torch.float64)
    expected = ((x[:, None] - e[None]) ** 2).sum(-1)
    torch.testing.assert_close(squared_distances(x, e), expected, rtol=1e-12, atol=1e-12)


# ---- straight-through, decode ---------------------------------------------------------------------


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_straight_through_gradient_is_the_identity(ema_decay):
    vq = VectorQuantizer(dim=4, codebook_size=8, ema_decay=ema_decay)
    z = torch.randn(2, 4, 6, requires_grad=True)
    w = torch.randn(2, 4, 6)
    (w * vq(z).quantized).sum().backward()
    assert torch.equal(z.grad, w)
    assert vq.codebook.grad is None  # the quantized output carries no gradient to the codebook


def test_quantized_values_are_codebook_rows_and_decode_reproduces_them():
    vq = VectorQuantizer(dim=4, codebook_size=8).eval()
    with torch.no_grad():
        vq.codebook.mul_(50)  # spread the codes so several are used
    z = torch.randn(2, 4, 9) * 5
    result = vq(z)
    chosen = vq.codebook.detach()[result.codes]  # [B, F, D]
    # quantized = z + (e - z).detach(): equal to e up to one rounding of the straight-through sum
    torch.testing.assert_close(result.quantized.detach(), chosen.permute(0, 2, 1), rtol=0, atol=1e-5)
    torch.testing.assert_close(vq.decode(result.codes).detach(), result.quantized.detach(), rtol=0, atol=1e-5)
    assert result.codes.unique().numel() > 1


# ---- loss terms ---------------------------------------------------------------------------------


def test_gradient_mode_loss_terms_value_and_where_their_gradients_go():
    vq = VectorQuantizer(dim=3, codebook_size=5)
    z = torch.randn(2, 3, 4, requires_grad=True)
    result = vq(z)
    assert set(result.losses) == {"codebook", "commitment"}
    chosen = vq.codebook.detach()[result.codes].permute(0, 2, 1)  # [B, D, F]
    expected = ((z.detach() - chosen) ** 2).mean()
    torch.testing.assert_close(result.losses["codebook"].detach(), expected)
    torch.testing.assert_close(result.losses["commitment"].detach(), expected)

    # commitment moves z only, towards its code: d/dz mean((z - e)^2) = 2 (z - e) / numel
    result.losses["commitment"].backward(retain_graph=True)
    assert vq.codebook.grad is None
    torch.testing.assert_close(z.grad, 2 * (z.detach() - chosen) / z.numel())

    # codebook term moves the codebook only
    z.grad = None
    result.losses["codebook"].backward()
    assert z.grad is None
    grad = vq.codebook.grad
    used = torch.zeros(5, dtype=torch.bool)
    used[result.codes.unique()] = True
    assert (grad[used].abs().sum(1) > 0).all()
    assert torch.equal(grad[~used], torch.zeros_like(grad[~used]))
    # d/de_k mean((e - z)^2) = 2 * sum over frames assigned to k of (e_k - z) / numel
    flat, codes = rows_of(z.detach()), result.codes.reshape(-1)
    expected_grad = torch.zeros(5, 3).index_add_(0, codes, 2 * (vq.codebook.detach()[codes] - flat) / z.numel())
    torch.testing.assert_close(grad, expected_grad)


def test_ema_mode_has_no_codebook_loss_and_no_codebook_gradient():
    vq = VectorQuantizer(dim=3, codebook_size=5, ema_decay=0.9)
    assert not vq.codebook.requires_grad
    z = torch.randn(2, 3, 4, requires_grad=True)
    result = vq(z)
    assert set(result.losses) == {"commitment"}
    q = result.quantized.detach()  # the codebook was updated in place by this step; quantized holds the old codes
    torch.testing.assert_close(result.losses["commitment"].detach(), ((z.detach() - q) ** 2).mean(), atol=1e-6, rtol=1e-5)


# ---- EMA ----------------------------------------------------------------------------------------


def test_one_ema_step_matches_a_hand_computation():
    decay, eps = 0.9, 0.1
    vq = VectorQuantizer(dim=2, codebook_size=2, ema_decay=decay, ema_epsilon=eps)
    # construction leaves cluster_size = 1 and embed_sum = codebook
    assert torch.equal(vq.cluster_size, torch.ones(2))
    assert torch.equal(vq.embed_sum, vq.codebook.detach())
    set_codebook(vq, torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 10.0]])  # codes 0, 0, 1

    result = vq(frames(x))

    assert result.codes.tolist() == [[0, 0, 1]]
    # counts (2, 1); per-code sums (1, 1) and (9, 10)
    n0 = 0.9 * 1 + 0.1 * 2        # 1.1
    n1 = 0.9 * 1 + 0.1 * 1        # 1.0
    s0 = [0.9 * 0 + 0.1 * 1, 0.9 * 0 + 0.1 * 1]      # (0.1, 0.1)
    s1 = [0.9 * 10 + 0.1 * 9, 0.9 * 10 + 0.1 * 10]   # (9.9, 10.0)
    n = n0 + n1
    m0 = (n0 + eps) / (n + 2 * eps) * n
    m1 = (n1 + eps) / (n + 2 * eps) * n
    torch.testing.assert_close(vq.cluster_size, torch.tensor([n0, n1]))
    torch.testing.assert_close(vq.embed_sum, torch.tensor([s0, s1]))
    expected = torch.tensor([[s0[0] / m0, s0[1] / m0], [s1[0] / m1, s1[1] / m1]])
    torch.testing.assert_close(vq.codebook.detach(), expected)
    # the output of this step used the codebook from before the update
    torch.testing.assert_close(result.quantized[0].t(), torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 10.0]]))


def test_ema_codes_move_towards_their_data_over_many_steps():
    vq = VectorQuantizer(dim=2, codebook_size=2, ema_decay=0.5, ema_epsilon=1e-5)
    set_codebook(vq, torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    centre = torch.tensor([[1.0, -1.0], [8.0, 9.0]])
    x = torch.cat([centre[0].expand(4, 2), centre[1].expand(4, 2)])
    for _ in range(40):
        vq(frames(x))
    torch.testing.assert_close(vq.codebook.detach(), centre, atol=1e-3, rtol=0)


@pytest.mark.parametrize("kwargs", [dict(ema_decay=0.9, dead_code_steps=1, init="random"),
                                    dict(ema_decay=None, dead_code_steps=1, init="kmeans")])
def test_eval_mode_updates_nothing(kwargs):
    vq = VectorQuantizer(dim=3, codebook_size=6, **kwargs).eval()
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    for _ in range(3):
        vq(torch.randn(2, 3, 5) * 4)
    after = vq.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert not bool(vq.initialized)


def test_ema_codebook_changes_in_training_mode():  # the counterpart of the eval test: it can fail
    vq = VectorQuantizer(dim=3, codebook_size=6, ema_decay=0.9)
    before = vq.codebook.detach().clone()
    vq(torch.randn(2, 3, 5))
    assert not torch.equal(before, vq.codebook.detach())


# ---- dead-code restart --------------------------------------------------------------------------


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_dead_codes_are_reseeded_from_the_batch_after_dead_code_steps(ema_decay):
    vq = VectorQuantizer(dim=2, codebook_size=4, ema_decay=ema_decay, dead_code_steps=2)
    far = torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]])
    set_codebook(vq, far)
    batch1 = torch.randn(12, 2) * 0.5   # every row maps to code 0
    batch2 = torch.randn(12, 2) * 0.5

    r1 = vq(frames(batch1))
    assert (r1.codes == 0).all()
    assert vq.unused_steps.tolist() == [0, 1, 1, 1]
    torch.testing.assert_close(vq.codebook.detach()[1:], far[1:], rtol=1e-4, atol=0)  # not yet dead

    r2 = vq(frames(batch2))
    assert (r2.codes == 0).all()
    fresh = vq.codebook.detach()[1:]
    assert is_row_of(fresh, batch2).all(), "every restarted code must be a vector of the current batch"
    assert len({tuple(r.tolist()) for r in fresh}) == 3, "restarted codes drawn without replacement"
    assert vq.unused_steps.tolist() == [0, 0, 0, 0]
    if ema_decay is None:
        assert torch.equal(vq.codebook.detach()[0], far[0])  # the live code is untouched in gradient mode
    else:
        assert torch.equal(vq.embed_sum[1:], fresh)
        assert torch.equal(vq.cluster_size[1:], torch.ones(3))

    # the restarted codes now attract data
    r3 = vq(frames(torch.cat([batch2, fresh])))
    assert set(r3.codes.unique().tolist()) == {0, 1, 2, 3}


# ---- data initialisation ------------------------------------------------------------------------


def test_random_init_takes_codebook_rows_from_the_first_batch_only():
    vq = VectorQuantizer(dim=3, codebook_size=8, init="random")
    assert not bool(vq.initialized)
    z1 = torch.randn(2, 3, 10) * 5 + 20  # far from the construction-time codebook
    result = vq(z1)
    assert bool(vq.initialized)
    codebook = vq.codebook.detach().clone()
    assert is_row_of(codebook, rows_of(z1)).all()
    assert len({tuple(r.tolist()) for r in codebook}) == 8
    # codes of that batch were searched in the new codebook: the sampled rows quantise to themselves
    assert torch.equal(result.quantized.detach().isclose(z1).all(1).sum(), torch.tensor(8))

    vq(torch.randn(2, 3, 10) - 30)
    assert torch.equal(vq.codebook.detach(), codebook), "the second batch must not re-initialise"


def test_kmeans_init_recovers_well_separated_cluster_centres():
    centres = torch.tensor([[6.0, 6.0, 0.0], [-6.0, -6.0, 3.0]])
    for seed in range(5):
        torch.manual_seed(seed)
        points = (centres[:, None, :] + 0.1 * torch.randn(2, 40, 3)).reshape(-1, 3)
        points = points[torch.randperm(len(points))]
        vq = VectorQuantizer(dim=3, codebook_size=2, init="kmeans", kmeans_iters=10)
        vq(frames(points))
        assert bool(vq.initialized)
        codebook = vq.codebook.detach()
        distance = torch.cdist(centres, codebook).min(1).values
        assert (distance < 0.05).all(), (seed, codebook)
        # and the second batch does not re-run k-means
        vq(frames(points * -3))
        assert torch.equal(vq.codebook.detach(), codebook)


def test_kmeans_finds_four_well_separated_clusters_for_every_seed():
    centres = torch.tensor([[5.0, 5.0], [-5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]])
    missed = []
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        x = (centres[:, None, :] + 0.1 * torch.randn(4, 50, 2, generator=g)).reshape(-1, 2)
        found = kmeans(x, 4, iters=10, generator=g)
        if (torch.cdist(centres, found).min(1).values > 0.1).any():
            missed.append(seed)
    assert missed == []


# ---- metrics ------------------------------------------------------------------------------------


def test_perplexity_and_used_codes():
    k = 4
    vq = VectorQuantizer(dim=2, codebook_size=k).eval()
    codebook = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    set_codebook(vq, codebook)

    uniform = vq(frames(codebook.repeat(3, 1)))
    torch.testing.assert_close(uniform.metrics["perplexity"], torch.tensor(float(k)))
    assert uniform.metrics["used_codes"].item() == k

    single = vq(frames(codebook[2:3].repeat(12, 1)))
    torch.testing.assert_close(single.metrics["perplexity"], torch.tensor(1.0))
    assert single.metrics["used_codes"].item() == 1

    # codes 0, 0, 0, 3: p = (3/4, 1/4)
    skewed = vq(frames(codebook[[0, 0, 0, 3]]))
    assert skewed.metrics["used_codes"].item() == 2
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    torch.testing.assert_close(skewed.metrics["perplexity"], torch.tensor(math.exp(entropy)))
    assert not skewed.metrics["perplexity"].requires_grad


# ---- robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [dict(ema_decay=0.9, dead_code_steps=1),
                                    dict(ema_decay=None, dead_code_steps=1, init="random")])
def test_a_nan_batch_in_training_leaves_the_codebook_finite_and_unchanged(kwargs):
    vq = VectorQuantizer(dim=3, codebook_size=6, **kwargs)
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    z = torch.randn(2, 3, 5)
    z[1, 0, 2] = float("nan")
    vq(z)
    assert torch.isfinite(vq.codebook).all()
    for key, value in vq.state_dict().items():
        assert torch.equal(before[key], value), key


@pytest.mark.parametrize("init", [None, "kmeans"])
def test_ema_steps_under_bfloat16_autocast_keep_float32_state_and_equal_the_float32_steps(init):
    vq = VectorQuantizer(dim=4, codebook_size=8, ema_decay=0.9, dead_code_steps=1, init=init)
    twin = VectorQuantizer(dim=4, codebook_size=8, ema_decay=0.9, dead_code_steps=1, init=init)
    twin.load_state_dict(vq.state_dict())
    batches = [torch.randn(2, 4, 6).to(torch.bfloat16) for _ in range(3)]
    before = vq.codebook.detach().clone()

    torch.manual_seed(1)
    for z in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            result = vq(z)
        assert result.quantized.dtype == torch.bfloat16
    assert vq.codebook.dtype == torch.float32
    assert vq.embed_sum.dtype == torch.float32 and vq.cluster_size.dtype == torch.float32
    assert torch.isfinite(vq.codebook).all()
    assert not torch.equal(vq.codebook.detach(), before)

    torch.manual_seed(1)  # same init and restart draws
    for z in batches:
        twin(z.float())   # the same steps without autocast, on the same values
    for key, value in twin.state_dict().items():
        torch.testing.assert_close(vq.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_nearest_code_search_runs_in_float32_under_autocast():
    vq = VectorQuantizer(dim=2, codebook_size=2).eval()
    set_codebook(vq, torch.tensor([[100.5, 100.0], [99.0, 100.0]]))
    x = torch.tensor([[100.375, 100.0], [99.5, 100.0], [100.0, 100.0]])  # nearest: 0, 1, 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = vq(frames(x))
        bf16_codes = squared_distances(x, vq.codebook.detach()).argmin(1)
    assert result.codes.tolist() == [[0, 1, 0]]
    assert bf16_codes.tolist() != [0, 1, 0]  # the case is one that a bfloat16 matmul gets wrong


def test_the_search_in_blocks_of_rows_finds_the_same_codes():
    torch.manual_seed(0)
    x, codebook = torch.randn(50, 4), torch.randn(16, 4)
    whole = nearest_codes(x, codebook, block=50)
    assert torch.equal(nearest_codes(x, codebook, block=7), whole)  # 50 frames in 8 blocks


def test_nearest_codes_is_the_exact_nearest_neighbour():
    """The float32 search picks a code whose float64 distance is the minimum (up to float32 rounding of
    near-ties), on data far from the origin where dropping ‖x‖² matters most for rounding."""
    torch.manual_seed(0)
    x, codebook = 3 + torch.randn(5000, 64), 3 + torch.randn(512, 64)
    codes = nearest_codes(x, codebook)
    exact = squared_distances(x.double(), codebook.double())
    chosen = exact.gather(1, codes[:, None])[:, 0]
    assert torch.allclose(chosen, exact.min(1).values, rtol=1e-6, atol=0)
    assert (codes == exact.argmin(1)).float().mean() > 0.999


def test_restarted_codes_start_with_clean_adam_moments():
    """A code re-seeded by dead-code restart gets zero Adam moments before the next step; the others keep theirs."""
    torch.manual_seed(0)
    vq = VectorQuantizer(dim=4, codebook_size=8, dead_code_steps=2).train()
    optimizer = torch.optim.Adam(vq.parameters(), lr=1e-2)
    z = torch.randn(1, 4, 32)
    for _ in range(2):  # two steps: moments exist for every row
        r = vq(z)
        optimizer.zero_grad()
        (r.losses["codebook"] + r.losses["commitment"]).backward()
        optimizer.step()
    state = optimizer.state[vq.codebook]
    vq.reset_optimizer_state(optimizer)  # consume any restart of those two steps
    assert not vq.restarted.any()
    state["exp_avg"].fill_(1.0)
    state["exp_avg_sq"].fill_(1.0)
    dead = torch.zeros(8, dtype=torch.bool)
    dead[[1, 5]] = True
    vq._restart(dead, z[0].T)  # re-seeds codes 1 and 5 from encoder outputs, as a dead-code restart does
    assert vq.reset_optimizer_state(optimizer) == 2
    for key in ("exp_avg", "exp_avg_sq"):
        assert state[key][[1, 5]].abs().sum() == 0 and bool((state[key][[0, 2, 3, 4, 6, 7]] == 1).all())
    assert not vq.restarted.any()  # consumed


def test_restart_marks_the_reseeded_codes():
    torch.manual_seed(0)
    vq = VectorQuantizer(dim=2, codebook_size=4, dead_code_steps=1).train()
    set_codebook(vq, torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]]))
    vq(frames(torch.randn(16, 2) * 0.1))  # only code 0 is used: 1, 2, 3 are dead after one step
    assert vq.restarted.tolist() == [False, True, True, True]
