"""A small speaker classifier to judge whose voice a waveform is in: log-mel statistics + logistic regression.

Each utterance becomes one 160-d vector, the mean and the standard deviation over frames of its
80-band :func:`~vqspeech.data.features.log_mel`, computed after scaling the waveform to a fixed RMS so
that recording level is not taken for voice. Features are standardised with the training set's
mean and std; a multinomial logistic regression with an L2 penalty is fitted full-batch with L-BFGS
from zero weights in float64, so the same data always gives the same classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vqspeech.data.features import log_mel
from vqspeech.eval.logistic import fit_softmax_regression

TARGET_RMS = 0.1


def utterance_features(waves: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
    """waves: [T_i] each -> [N, 160]: per-utterance mean and std over frames of the log-mel of each."""
    rows = []
    for wav in waves:
        wav = np.asarray(wav, dtype=np.float32)
        rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) if len(wav) else 0.0
        mel = log_mel(wav * (TARGET_RMS / rms) if rms > 1e-8 else wav, sample_rate)  # [80, frames]
        rows.append(np.concatenate([mel.mean(axis=1), mel.std(axis=1)]))
    return np.stack(rows).astype(np.float64)


class SpeakerClassifier:
    """Use: ``clf = SpeakerClassifier.fit(waves, labels, n_classes, sample_rate); clf.predict(other_waves)``."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, weight: torch.Tensor, bias: torch.Tensor,
                 sample_rate: int):
        self.mean, self.std = mean, std  # [160] each
        self.weight, self.bias = weight, bias  # [160, n_classes], [n_classes], float64
        self.sample_rate = sample_rate

    @classmethod
    def fit(cls, waves: Sequence[np.ndarray], labels: Sequence[int], n_classes: int, sample_rate: int,
            l2: float = 1e-3, max_iter: int = 500) -> SpeakerClassifier:
        """Fit on waves [T_i] with labels in [0, n_classes); ``l2`` weighs the squared weight norm."""
        if len(waves) != len(labels) or not waves:
            raise ValueError(f"need as many labels as waves, and at least one ({len(waves)} vs {len(labels)})")
        features = utterance_features(waves, sample_rate)
        mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
        weight, bias = fit_softmax_regression(torch.from_numpy((features - mean) / std),
                                              torch.as_tensor(list(labels), dtype=torch.long), n_classes, l2,
                                              max_iter, tolerance_grad=1e-9, tolerance_change=1e-12)
        return cls(mean, std, weight, bias, sample_rate)

    @property
    def n_classes(self) -> int:
        return self.bias.shape[0]

    def logits(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """waves: [T_i] each -> [N, n_classes]."""
        x = torch.from_numpy((utterance_features(waves, self.sample_rate) - self.mean) / self.std)
        return (x @ self.weight + self.bias).numpy()

    def predict(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """waves: [T_i] each -> int64 [N], the most likely class of each."""
        if not waves:
            return np.zeros(0, dtype=np.int64)
        return self.logits(waves).argmax(axis=1).astype(np.int64)

    def accuracy(self, waves: Sequence[np.ndarray], labels: Sequence[int]) -> float:
        """Share of waves whose predicted class is their label."""
        if not waves:
            raise ValueError("no waves to score")
        return float((self.predict(waves) == np.asarray(labels)).mean())
