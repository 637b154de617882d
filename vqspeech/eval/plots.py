"""Log-mel spectrograms of waveforms side by side, as a PNG or as an image array for TensorBoard.

Matplotlib's object API with the Agg canvas: no display, no global pyplot state.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vqspeech.data.features import log_mel


def spectrogram_figure(panels: Sequence[tuple[str, np.ndarray]], sample_rate: int, title: str | None = None):
    """One log-mel panel per (label, wav [T]), stacked, on a shared colour scale."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    mels = [log_mel(wav, sample_rate) for _, wav in panels]
    vmax = max(float(m.max()) for m in mels)
    vmin = max(min(float(m.min()) for m in mels), vmax - 12.0)  # 12 nats ≈ 52 dB of range
    seconds = max(len(wav) for _, wav in panels) / sample_rate
    fig = Figure(figsize=(max(4.0, 2.0 + 2.0 * seconds), 1.2 + 1.6 * len(panels)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
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


def spectrogram_image(wav: np.ndarray, sample_rate: int, label: str) -> np.ndarray:
    """The spectrogram of wav [T] as an RGB uint8 image [3, H, W] (TensorBoard's add_image layout)."""
    fig = spectrogram_figure([(label, wav)], sample_rate)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1))
