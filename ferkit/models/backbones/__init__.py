"""Pretrained face backbones re-implemented in PyTorch."""
