"""The training loop (loop.py) and checkpoints (checkpoint.py)."""

from vqspeech.training.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
