"""What training shows in TensorBoard beyond scalars: validation utterances and their reconstructions."""

from __future__ import annotations

import numpy as np
import torch

from vqspeech.plots import spectrogram_image
from vqspeech.models import VQVAE
from vqspeech.models.generation import SEGMENT_SECONDS, GenerationConfig


@torch.no_grad()
def log_reconstructions(writer, model: VQVAE, waves: list[np.ndarray], speaker_ids: list[int], tags: list[str],
                        step: int, sample_rate: int, seconds: float = 1.0) -> None:
    """Write to TensorBoard each utterance's original and its reconstruction (sampled, folded, the first
    ``seconds``), with their spectrograms, under ``reconstruction/<tag>/``. waves: [T_i] each."""
    hop, device = model.hop_length, model.device
    was_training = model.training
    model.eval()
    cut = [w[: int(seconds * sample_rate) // hop * hop] for w in waves]
    keep = [i for i, w in enumerate(cut) if len(w)]
    if not keep:
        return
    codes = [model.encode_waveform(cut[i]) for i in keep]
    config = GenerationConfig.from_seconds(SEGMENT_SECONDS, sample_rate, hop)  # sampled, 8-frame overlap
    ids = torch.tensor([speaker_ids[i] for i in keep], dtype=torch.long, device=device)
    # a generator of its own: logging must not move the training RNG
    generated = model.decode(codes, ids, config, torch.Generator(device=device).manual_seed(step),
                             pitch=model.encode_pitches([cut[i] for i in keep]))
    model.train(was_training)
    for i, audio in zip(keep, generated):
        original, audio = cut[i], audio.float().cpu().numpy()
        for name, wav in (("original", original), ("reconstructed", audio)):
            tag = f"reconstruction/{tags[i]}/{name}"
            writer.add_audio(tag, torch.from_numpy(wav)[None], step, sample_rate=sample_rate)
            writer.add_image(f"{tag}_spectrogram", spectrogram_image(wav, sample_rate, f"{tags[i]} {name}"), step)
