"""Backbones and heads."""

from .backbones import BACKBONE_INPUTS, BACKBONES, ConvNetSmall, build_backbone, convnet_small, resnet18, resnet50
from .frames import FramePooled
from .gcn import GCN, gcn, normalized_adjacency
from .heads import MLPHead
from .video import VideoSmall, video_small

__all__ = ["BACKBONES", "BACKBONE_INPUTS", "ConvNetSmall", "FramePooled", "GCN", "MLPHead", "VideoSmall",
           "build_backbone", "convnet_small", "gcn", "normalized_adjacency", "resnet18", "resnet50", "video_small"]
