"""Projection / prediction heads built from a list of widths."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


class MLPHead(nn.Sequential):
    """An MLP head ``widths[0] → … → widths[-1]``.

    Every hidden layer is Linear → BatchNorm1d → ReLU; the output layer is a plain Linear
    (``last_bn=True`` adds a BatchNorm1d without affine after it, as in SimSiam/Barlow Twins).
    Example: SimCLR's projector on a 512-d ResNet-18 is ``MLPHead([512, 2048, 128])``.
    """

    def __init__(self, widths: Sequence[int], *, last_bn: bool = False, hidden_bn: bool = True) -> None:
        widths = list(widths)
        if len(widths) < 2 or any(int(w) <= 0 for w in widths):
            raise ValueError(f"widths: expected at least two positive layer widths, got {widths}")
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            last = i == len(widths) - 2
            layers.append(nn.Linear(w_in, w_out, bias=last or not hidden_bn))
            if not last:
                if hidden_bn:
                    layers.append(nn.BatchNorm1d(w_out))
                layers.append(nn.ReLU(inplace=True))
            elif last_bn:
                layers.append(nn.BatchNorm1d(w_out, affine=False))
        super().__init__(*layers)
        self.widths = widths
