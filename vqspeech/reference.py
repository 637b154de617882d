"""The reference curve: where a run stands against the shipped model's training run at the same audio seen.

A run's progress is measured in hours of audio its steps have read (step × batch × crop / rate × processes),
which compares runs of other batch sizes, crops and machines; CPU hours do not. A fine-tuned run
(``init_from``) counts its source's audio too. The shipped run's curve is a
CSV in vqspeech/weights/ (``step, audio_hours, minutes, valid, train``: its validation score,
``valid/<task.valid_name>``, and training loss ``train/loss_total``, blank where not logged), written by
tools/export_pretrained.py. ``vqspeech report`` prints :meth:`Standing.describe`; the trainer writes the curve
into a run's TensorBoard as ``reference/valid`` (:func:`log_reference`).
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

LEVEL = 0.02  # within ±2 % of the reference's validation score is level


@dataclass
class Curve:
    """A training run's validation score and training loss against the audio it had read.

    Attributes:
        name: whose curve (a shipped model's name).
        audio_hours: float [N], increasing.
        valid: float [N], the validation score (NaN where not logged).
        train: float [N], the training loss train/loss_total (NaN where not logged).
        steps: int [N].
        decoder: the run's decoder kind: only runs with the same decoder have comparable scores.
        corpus: the name of the folder it trained on (data.root's last part).
        preemphasis: its model.preemphasis, and sample_rate its rate: both change the loss's scale.
    """

    name: str
    audio_hours: np.ndarray
    valid: np.ndarray
    train: np.ndarray
    steps: np.ndarray
    decoder: str = "parallel"
    corpus: str = ""
    preemphasis: float = 0.0
    sample_rate: int = 16000

    @classmethod
    def read(cls, path: str | Path, name: str, **fields: Any) -> Curve:
        with open(path, newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: float(r["audio_hours"]))
        column = lambda key: np.array([float(r[key]) if r.get(key) not in (None, "") else math.nan for r in rows])
        return cls(name=name, audio_hours=column("audio_hours"), valid=column("valid"), train=column("train"),
                   steps=np.array([int(r["step"]) for r in rows]), **fields)

    def write(self, path: str | Path, minutes: np.ndarray) -> None:
        with open(path, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["step", "audio_hours", "minutes", "valid", "train"])
            for row in zip(self.steps, self.audio_hours, minutes, self.valid, self.train):
                out.writerow([int(row[0])] + ["" if math.isnan(v) else f"{v:.6g}" for v in row[1:]])

    def valid_at(self, hours: float) -> float | None:
        """The reference's validation score at ``hours`` of audio (linear between its points), None outside."""
        known = ~np.isnan(self.valid)
        x, y = self.audio_hours[known], self.valid[known]
        if len(x) == 0 or not x[0] <= hours <= x[-1]:
            return None
        return float(np.interp(hours, x, y))


@dataclass
class Standing:
    """A run's validation score beside the reference's at the same audio-hours: ahead (lower), level or
    behind."""

    audio_hours: float
    ours: float
    reference: float | None     # None: the run is outside the reference curve's range
    reference_name: str
    span: tuple[float, float]   # the reference curve's range of audio-hours
    same_corpus: bool
    nearest: tuple[float, float] | None = None  # outside the range: the curve's nearest point (hours, valid)

    @property
    def verdict(self) -> str:
        if self.reference is None:
            return "outside the reference curve"
        if self.ours < self.reference * (1 - LEVEL):
            return "ahead"
        return "behind" if self.ours > self.reference * (1 + LEVEL) else "level"

    def describe(self) -> str:
        if self.reference is None:
            near = f" (its nearest point, at {self.nearest[0]:.1f} h: {self.nearest[1]:.4f})" if self.nearest else ""
            return (f"reference curve ({self.reference_name}): this run has read {self.audio_hours:.1f} h of audio, "
                    f"outside the curve's {self.span[0]:.1f}–{self.span[1]:.1f} h{near}; valid {self.ours:.4f}")
        loose = "" if self.same_corpus else " (on another corpus's validation audio: a loose comparison)"
        return (f"reference curve ({self.reference_name}): {self.verdict} at {self.audio_hours:.1f} h of audio: "
                f"valid {self.ours:.4f} against {self.reference:.4f}{loose}")


def audio_hours(step: int, config: dict[str, Any], world_size: int = 1) -> float:
    """Hours of audio ``step`` steps of a run of ``config`` (its train and data sections) have read."""
    train, rate = config["train"], config["data"]["sample_rate"]
    return step * train["batch_size"] * train["crop_samples"] * world_size / rate / 3600


def standing(curve: Curve, hours: float, valid: float, same_corpus: bool) -> Standing:
    known = ~np.isnan(curve.valid)
    x, y = curve.audio_hours[known], curve.valid[known]
    nearest = None
    if len(x) and not x[0] <= hours <= x[-1]:
        i = int(np.argmin(np.abs(x - hours)))
        nearest = (float(x[i]), float(y[i]))
    return Standing(audio_hours=hours, ours=valid, reference=curve.valid_at(hours), reference_name=curve.name,
                    span=(float(x[0]), float(x[-1])) if len(x) else (math.nan, math.nan),
                    same_corpus=same_corpus, nearest=nearest)


def shipped_curve(name: str | None = None) -> Curve | None:
    """The shipped model's curve (default: the default model's); None, with a warning when it is damaged, if
    it ships none: the curve is a guide, and nothing stops for want of it."""
    from vqspeech import pretrained
    from vqspeech.errors import UserError

    name = name or pretrained.DEFAULT
    try:
        entry = pretrained.index().get(name) or {}
        path = pretrained.shipped_file(name, "curve")
        if path is None:
            return None
        return Curve.read(path, name, **{key: entry[key] for key in ("decoder", "corpus", "preemphasis",
                                                                     "sample_rate") if key in entry})
    except (UserError, OSError, ValueError, KeyError) as exc:
        log.warning("no reference curve: %s", exc)
        return None


def comparable(curve: Curve | None, model_kwargs: dict[str, Any]) -> bool:
    """Whether a run of this model has validation scores the curve's can be held against: a VQ-VAE with the
    curve's decoder kind, pre-emphasis and sample rate."""
    model = model_kwargs.get("model") or {}
    return (curve is not None and model_kwargs.get("kind", "vqvae") == "vqvae"
            and (model.get("decoder") or {}).get("kind") == curve.decoder
            and float(model.get("preemphasis") or 0.0) == float(curve.preemphasis)
            and model_kwargs.get("sample_rate", curve.sample_rate) == curve.sample_rate)


def source_hours(config: dict[str, Any]) -> float:
    """The audio-hours a fine-tuned run's source had read (its ``init_from``); 0 for a run from scratch."""
    spec = config.get("init_from")
    if not spec:
        return 0.0
    from vqspeech.checkpoint import load_checkpoint
    from vqspeech.training.init_from import resolve_source

    payload = load_checkpoint(resolve_source(str(spec)))
    return audio_hours(int(payload["step"]), payload["config"], int(payload.get("world_size", 1)))


def run_standing(run) -> Standing | None:
    """Where a loaded run (:class:`vqspeech.runs.LoadedRun`) stands: its last validation score in its
    TensorBoard up to its checkpoint's step, against the shipped curve. None for a shipped model, a run with
    another decoder, or one with no validation logged."""
    from vqspeech.compare import scalars

    curve = shipped_curve()
    if run.shipped or not comparable(curve, run.model_kwargs):
        return None
    logged = {s: v for s, v in scalars(run.run_dir, "valid/").get("valid/loss_reconstruction", {}).items()
              if s <= run.step}
    if not logged:
        return None
    step = max(logged)
    same = Path(str(run.config["data"]["root"])).name == curve.corpus
    hours = source_hours(run.config) + audio_hours(step, run.config, run.world_size)
    return standing(curve, hours, logged[step], same)


def log_reference(writer, curve: Curve, config: dict[str, Any], world_size: int = 1) -> int:
    """Write the curve's validation points into a run's TensorBoard as ``reference/valid``, at the steps where
    this run (of ``config``, resolved) will have read the same audio (a fine-tuned run: with its source's).
    Returns the points written."""
    per_step, before = audio_hours(1, config, world_size), source_hours(config)
    written = 0
    for hours, value in zip(curve.audio_hours, curve.valid):
        if not math.isnan(value) and hours >= before:
            writer.add_scalar("reference/valid", float(value), int(round((hours - before) / per_step)))
            written += 1
    return written
