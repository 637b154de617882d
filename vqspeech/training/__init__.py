"""The training loop (loop.py), checkpoints (checkpoint.py), torchrun/DDP (distributed.py) and mixed
precision (precision.py)."""

from vqspeech.training.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
