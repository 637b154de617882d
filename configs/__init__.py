"""Hydra config groups shipped with vqspeech (installed as the package ``vqspeech.configs``)."""
