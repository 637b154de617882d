"""Multinomial logistic regression, fitted full-batch by L-BFGS from zero weights (deterministic).

Shared by the speaker classifier (conversion evaluation) and the linear phone probes (probing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_softmax_regression(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float, max_iter: int,
                           tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise cross-entropy(x·W + b, y) + l2·‖W‖².

    Args:
        x: Tensor[N, D] (standardised by the caller; its dtype is kept).
        y: LongTensor[N] in [0, n_classes).
    Returns:
        (W Tensor[D, n_classes], b Tensor[n_classes]), detached.
    """
    with torch.inference_mode(False), torch.enable_grad():  # callable from an inference-mode caller
        x, y = x.clone(), y.clone()
        weight = torch.zeros(x.shape[1], n_classes, dtype=x.dtype, requires_grad=True)
        bias = torch.zeros(n_classes, dtype=x.dtype, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, history_size=20,
                                      line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(x @ weight + bias, y) + l2 * weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    return weight.detach(), bias.detach()
