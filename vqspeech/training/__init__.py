"""Training: the trainer shared by every task (trainer.py), the task interface (task.py), the VQ-VAE task
(vqvae_task.py), torchrun/DDP (distributed.py), mixed precision (precision.py), the train.* keys (keys.py) and
reconstructions in TensorBoard (tensorboard.py). Checkpoints are vqspeech/checkpoint.py's."""

from vqspeech.training.trainer import TrainResult
from vqspeech.training.vqvae_task import train

__all__ = ["TrainResult", "train"]
