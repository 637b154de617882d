"""The training loop (loop.py), checkpoints (checkpoint.py), torchrun/DDP (distributed.py), mixed
precision (precision.py) and reconstructions in TensorBoard (tensorboard.py)."""

from vqspeech.training.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
