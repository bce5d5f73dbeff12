"""Causal SEANet-style convolution stacks, shared by the ``brainomni`` and ``braintokmix``
tokenizers.

Every convolution pads on the left only. An encoder of strides ``s_1 .. s_n`` maps
``(N, in_channels, T)`` to ``(N, dim, T / S)`` with ``S = prod(strides)``, and output step
``k`` reads input samples ``<= (k + 1) S - 1``. The mirrored decoder maps ``(N, dim, T')`` to
``(N, width, T' S)`` with output sample ``n`` reading steps ``<= n // S``; a model that wants
reconstructed sample ``t`` to read input samples ``<= t`` delays it by ``S - 1`` samples
(:func:`delay`).

torch is imported at module level: ephys imports this module only when a model is built.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ephys_models.configs.seanet import SEANetCodecConfig

__all__ = [
    "CausalConv1d",
    "CausalUpsample1d",
    "SEANetCodec",
    "delay",
    "seanet_decoder",
    "seanet_encoder",
]


class CausalConv1d(nn.Module):
    """A 1-D convolution padded on the left only.

    With stride ``s`` (``T`` a multiple of ``s``) output ``j`` reads input samples ending at
    ``(j + 1) s - 1``, and there are ``T / s`` outputs.
    """

    def __init__(
        self, cin: int, cout: int, kernel: int, *, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride, dilation=dilation)
        self.pad = (kernel - 1) * dilation + 1 - stride
        if self.pad < 0:
            raise ValueError(f"a causal convolution needs a kernel of at least {stride} taps")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.pad, 0)))


class CausalUpsample1d(nn.Module):
    """A transposed convolution (kernel ``2 s``, stride ``s``) cropped to ``T s`` outputs:
    output ``n`` reads inputs ``<= n // s`` only."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.ConvTranspose1d(cin, cout, 2 * stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)[..., : x.shape[-1] * self.stride]


class _ResidualUnit(nn.Module):
    """SEANet residual unit: ELU, dilated causal conv to half width, ELU, 1x1 conv back."""

    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        hidden = max(1, channels // 2)
        self.block = nn.Sequential(
            nn.ELU(),
            CausalConv1d(channels, hidden, kernel, dilation=dilation),
            nn.ELU(),
            nn.Conv1d(hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def seanet_encoder(
    cfg: SEANetCodecConfig, in_channels: int, out_channels: int
) -> tuple[nn.Sequential, int]:
    """``(N, in_channels, T)`` -> ``(N, out_channels, T / stride)``; also the widest width."""
    width = cfg.channels
    layers: list[nn.Module] = [CausalConv1d(in_channels, width, cfg.kernel_size)]
    for stride in cfg.strides:
        layers += [_ResidualUnit(width, cfg.residual_kernel_size, d) for d in cfg.dilations]
        layers += [nn.ELU(), CausalConv1d(width, 2 * width, 2 * stride, stride=stride)]
        width *= 2
    layers += [nn.ELU(), CausalConv1d(width, out_channels, cfg.kernel_size)]
    return nn.Sequential(*layers), width


def seanet_decoder(
    cfg: SEANetCodecConfig, in_channels: int, width: int
) -> tuple[nn.Sequential, int]:
    """``(N, in_channels, T')`` -> ``(N, channels, T' * stride)``, the encoder mirrored from
    its widest ``width``; also the output width."""
    layers: list[nn.Module] = [CausalConv1d(in_channels, width, cfg.kernel_size)]
    for stride in reversed(cfg.strides):
        layers += [nn.ELU(), CausalUpsample1d(width, width // 2, stride)]
        width //= 2
        layers += [_ResidualUnit(width, cfg.residual_kernel_size, d) for d in cfg.dilations]
    return nn.Sequential(*layers), width


def delay(h: torch.Tensor, stride: int) -> torch.Tensor:
    """Delay decoder features by ``stride - 1`` samples (zeros first), so that sample ``n``
    reads code steps ``k`` with ``(k + 1) stride - 1 <= n``: only the samples they cover."""
    return F.pad(h, (stride - 1, 0))[..., : h.shape[-1]]


class SEANetCodec:
    """The code layout of a model configured by a :class:`SEANetCodecConfig`: ``levels``
    residual-quantiser codes of ``n_latents`` latents per code step of ``time_stride``
    samples, each in ``[0, codebook_size)``."""

    config: SEANetCodecConfig

    @property
    def time_stride(self) -> int:
        """Input samples per code step (``prod(strides)``)."""
        return self.config.time_stride

    @property
    def n_latents(self) -> int:
        """Latent channels per code step."""
        return self.config.n_latents

    @property
    def levels(self) -> int:
        """Residual quantiser levels (codes per latent and step)."""
        return self.config.levels

    @property
    def codebook_size(self) -> int:
        """Codewords per level."""
        return self.config.codebook_size

    @property
    def vocab_size(self) -> int:
        """Codes lie in ``[0, vocab_size)`` (the codebook size of each level)."""
        return self.config.codebook_size
