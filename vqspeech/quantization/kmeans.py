"""k-means on encoder outputs, for codebook initialisation from data."""

from __future__ import annotations

import math

import torch


def squared_distances(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """‖x − e‖² for every pair, as ‖x‖² − 2 x·e + ‖e‖² (one matmul, no loop over codes).

    Args:
        x: Tensor[N, D].
        codebook: Tensor[K, D].
    Returns:
        Tensor[N, K].
    """
    return (x.pow(2).sum(1, keepdim=True)
            - 2 * x @ codebook.t()
            + codebook.pow(2).sum(1)[None, :])


NEAREST_BLOCK = 4096  # rows per block of nearest_codes: a [4096, K] score block stays in cache for its argmin


def nearest_codes(x: torch.Tensor, codebook: torch.Tensor, block: int = NEAREST_BLOCK) -> torch.Tensor:
    """Index of the nearest codebook row for every row of x, exactly (float32 distances, no approximation).

    argmin_k ‖x − e_k‖² = argmin_k (‖e_k‖² − 2 x·e_k): the ‖x‖² term is the same for every k, so it is left
    out, and each block's scores are one fused ``addmm`` followed by its argmin while the block is in cache.
    Memory is bounded by block × K whatever N is.

    Args:
        x: Tensor[N, D].
        codebook: Tensor[K, D].
    Returns:
        LongTensor[N].
    """
    norms, transposed = codebook.pow(2).sum(1), codebook.t()
    return torch.cat([torch.addmm(norms, rows, transposed, alpha=-2).min(1).indices for rows in x.split(block)])


def sample_vectors(x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """k rows of x drawn at random; without replacement when x has at least k rows. x: [N, D] -> [k, D]."""
    n = x.shape[0]
    if n >= k:
        idx = torch.randperm(n, device=x.device, generator=generator)[:k]
    else:
        idx = torch.randint(0, n, (k,), device=x.device, generator=generator)
    return x[idx].clone()


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Greedy k-means++ seeding: each new centre is the best (lowest total squared distance) of
    2 + ln k candidates drawn with probability ∝ squared distance to the nearest chosen centre.
    x: [N, D] -> [k, D]."""
    trials = 2 + int(math.log(k))
    first = torch.randint(0, x.shape[0], (1,), device=x.device, generator=generator)
    centres = [x[first]]
    nearest = squared_distances(x, centres[0])[:, 0].clamp(min=0)  # [N]
    for _ in range(1, k):
        weights = nearest if nearest.sum() > 0 else torch.ones_like(nearest)
        candidates = torch.multinomial(weights, trials, replacement=True, generator=generator)
        options = torch.minimum(nearest[:, None], squared_distances(x, x[candidates]).clamp(min=0))  # [N, trials]
        best = options.sum(0).argmin()
        centres.append(x[candidates[best]][None])
        nearest = options[:, best]
    return torch.cat(centres).clone()


def kmeans(x: torch.Tensor, k: int, iters: int = 10, generator: torch.Generator | None = None) -> torch.Tensor:
    """Lloyd's k-means from k-means++ seeds. Empty clusters keep their previous centroid.

    Args:
        x: Tensor[N, D].
    Returns:
        centroids: Tensor[k, D].
    """
    centroids = kmeans_plus_plus(x, k, generator)
    for _ in range(iters):
        assign = squared_distances(x, centroids).argmin(1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids
