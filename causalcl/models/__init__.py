"""Backbones and heads."""

from .backbones import BACKBONES, ConvNetSmall, build_backbone, convnet_small, resnet18, resnet50
from .heads import MLPHead

__all__ = ["BACKBONES", "ConvNetSmall", "MLPHead", "build_backbone", "convnet_small", "resnet18", "resnet50"]
