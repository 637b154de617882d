"""Figures: log-mel spectrograms side by side (PNG, or an image array for TensorBoard), count heatmaps, and
an utterance with its phone and code tiers.

Matplotlib's object API with the Agg canvas: no display, no global pyplot state.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vqspeech.data.alignments import PhoneSet, Segment
from vqspeech.data.features import log_mel


def spectrogram_figure(panels: Sequence[tuple[str, np.ndarray]], sample_rate: int, title: str | None = None):
    """One log-mel panel per (label, wav [T]), stacked, on a shared colour scale."""
    mels = [log_mel(wav, sample_rate) for _, wav in panels]
    vmax = max(float(m.max()) for m in mels)
    vmin = max(min(float(m.min()) for m in mels), vmax - 12.0)  # 12 nats ≈ 52 dB of range
    seconds = max(len(wav) for _, wav in panels) / sample_rate
    fig, axes = figure(max(4.0, 2.0 + 2.0 * seconds), 1.2 + 1.6 * len(panels), rows=len(panels))
    for ax, (label, wav), mel in zip(axes, panels, mels):
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                  extent=(0, len(wav) / sample_rate, 0, mel.shape[0]))
        ax.set_xlim(0, seconds)
        ax.set_ylabel("mel band")
        ax.set_title(label, fontsize=9)
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_spectrograms(path: str | Path, panels: Sequence[tuple[str, np.ndarray]], sample_rate: int,
                      title: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spectrogram_figure(panels, sample_rate, title).savefig(path, dpi=100)
    return path


def save_thumbnail(path: str | Path, wav: np.ndarray, sample_rate: int, width_px: int = 480,
                   height_px: int = 160) -> Path:
    """A small log-mel spectrogram of wav [T], edge to edge with no axes (a report page's player image).

    The colour scale spans 12 nats (about 52 dB) below the loudest bin; silence is drawn as the floor."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mel = log_mel(wav, sample_rate) if len(wav) else np.zeros((80, 1), np.float32)
    vmax = float(mel.max())
    fig, (ax,) = figure(width_px / 100, height_px / 100)
    ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=vmax - 12.0, vmax=vmax, interpolation="nearest")
    ax.set_axis_off()
    fig.subplots_adjust(0, 0, 1, 1)
    fig.savefig(path, dpi=100)
    return path


def spectrogram_image(wav: np.ndarray, sample_rate: int, label: str) -> np.ndarray:
    """The spectrogram of wav [T] as an RGB uint8 image [3, H, W] (TensorBoard's add_image layout)."""
    fig = spectrogram_figure([(label, wav)], sample_rate)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1))


def figure(width: float, height: float, rows: int = 1, ratios: Sequence[float] | None = None):
    """A figure (inches) on an Agg canvas and its ``rows`` stacked axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, 1, squeeze=False, height_ratios=ratios)[:, 0]


def heatmap(matrix: np.ndarray, rows: list[str], columns: list[str] | None, xlabel: str, title: str,
             path: Path) -> None:
    """matrix [R, C] of counts, shown normalised per row (``columns`` given) or per column (None)."""
    share = matrix / np.maximum(matrix.sum(1 if columns else 0, keepdims=True), 1)
    width = 2 + 0.18 * len(columns) if columns else min(24.0, 3 + 0.04 * matrix.shape[1])
    fig, (ax,) = figure(width, 2 + 0.16 * len(rows))
    ax.imshow(share, aspect="auto", cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(rows)), rows, fontsize=6)
    if columns:
        ax.set_xticks(range(len(columns)), columns, fontsize=6, rotation=90)
    ax.set(xlabel=xlabel, title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_alignment(wav: np.ndarray, segments: Sequence[Segment], codes: np.ndarray, sample_rate: int, hop: int,
                   phone_set: PhoneSet, title: str, path: Path) -> None:
    """Log-mel spectrogram of wav [T] over a phone tier and a code tier (codes [T // hop]: a colour per code,
    runs of 3+ frames numbered)."""
    seconds = len(wav) / sample_rate
    fig, axes = figure(min(24.0, max(6.0, 6 * seconds)), 4.5, rows=3, ratios=[4, 1, 1])
    mel = log_mel(wav, sample_rate, hop_length=hop)
    axes[0].imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, mel.shape[0]))
    axes[0].set(ylabel="mel band", title=title)
    for seg in segments:
        if seg.start < seconds:
            axes[1].axvline(seg.start, color="0.6", lw=0.5)
            axes[1].text((seg.start + min(seg.end, seconds)) / 2, 0.5, phone_set.map(seg.phone) or "",
                         ha="center", va="center", fontsize=6)
    axes[2].imshow(codes[None], aspect="auto", cmap="tab20", interpolation="nearest", extent=(0, seconds, 0, 1))
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], len(codes)]):
        if b - a >= 3:
            axes[2].text((a + b) / 2 * hop / sample_rate, 0.5, str(codes[a]), ha="center", va="center",
                         fontsize=5, rotation=90)
    for ax, name in zip(axes[1:], ("phones", "codes")):
        ax.set(xlim=(0, seconds), yticks=[], ylabel=name)
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
