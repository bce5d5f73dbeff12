"""VidTok-style causal tokenizer of sensor images with finite scalar quantisation.

After Tang et al. 2024, "VidTok: A Versatile and Open-Source Video Tokenizer" (arXiv
2412.13061): a 3-D convolutional encoder, causal in time, compresses a clip in time and space,
finite scalar quantisation (FSQ, no codebook to learn and no auxiliary loss) turns every latent
voxel into one code, and a mirrored decoder reconstructs the clip. Here the clip is a sensor
image ``(H, W, T)`` of the ``sensor_image`` dataset: one channel, every MEG/EEG sensor on its
own pixel.

torch is imported at module level: ephys imports this module only when the model is used.

Causality
---------
Every convolution pads time on the left only (space symmetrically), and no layer normalises or
mixes across time steps otherwise. With ``S = time_stride``:

* code step ``k`` depends only on input samples ``<= (k + 1) S - 1`` (the samples it covers and
  earlier ones);
* reconstructed sample ``t`` depends only on code steps ``k`` with ``(k + 1) S - 1 <= t``, so on
  input samples ``<= t``. Each upsampling gives sample ``n`` of a block the latents of its own
  step and earlier; the decoder's output is then delayed by ``S - 1`` samples, so that the last
  sample a code step covers is the first one it contributes to. The first ``S - 1``
  reconstructed samples see no code at all (they are the decoder's learned constant).

FSQ has no state, so this holds in training mode as well as in eval mode.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ephys_core.components import Component
from ephys_core.logging import get_logger
from ephys_models.configs.vidtok import VidTokConfig
from ephys_tokenizers.quantizers import FiniteScalarQuantizer

__all__ = ["VidTokFSQ"]

log = get_logger(__name__)


class _CausalConv3d(nn.Module):
    """A 3-D convolution over ``(N, C, T, H, W)``, padded on the left only in time and
    symmetrically in space.

    With time stride ``st`` (``T`` a multiple of it) output step ``j`` reads input samples
    ending at ``(j + 1) st - 1``; with an odd spatial kernel and ``H``, ``W`` multiples of the
    space stride ``ss`` there are ``H / ss`` by ``W / ss`` outputs.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        spatial_kernel: int,
        *,
        time_stride: int = 1,
        space_stride: int = 1,
    ) -> None:
        super().__init__()
        self.time_pad = kernel - time_stride
        if self.time_pad < 0:
            raise ValueError(f"a causal convolution needs a kernel of at least {time_stride} taps")
        self.space_pad = spatial_kernel // 2
        self.conv = nn.Conv3d(
            cin,
            cout,
            (kernel, spatial_kernel, spatial_kernel),
            stride=(time_stride, space_stride, space_stride),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.space_pad
        return self.conv(F.pad(x, (p, p, p, p, self.time_pad, 0)))


class _CausalUpsample(nn.Module):
    """A transposed 3-D convolution: time kernel ``2 st`` (1 without time stride) cropped to
    ``T st`` outputs, so that output ``n`` reads inputs ``<= n // st`` only; space kernel equal
    to its stride ``ss``, so that each input pixel becomes an ``ss`` by ``ss`` patch."""

    def __init__(self, cin: int, cout: int, time_stride: int, space_stride: int) -> None:
        super().__init__()
        self.time_stride = time_stride
        kernel = 2 * time_stride if time_stride > 1 else 1
        self.conv = nn.ConvTranspose3d(
            cin,
            cout,
            (kernel, space_stride, space_stride),
            stride=(time_stride, space_stride, space_stride),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)[:, :, : x.shape[2] * self.time_stride]


class _ChannelNorm(nn.Module):
    """RMS normalisation over channels at every voxel (it never mixes time steps)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels, 1, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(1, keepdim=True) + self.eps) * self.weight


class _ResidualBlock(nn.Module):
    """Norm, SiLU, causal 3-D conv, norm, SiLU, causal 3-D conv, plus the input."""

    def __init__(self, channels: int, kernel: int, spatial_kernel: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _ChannelNorm(channels),
            nn.SiLU(),
            _CausalConv3d(channels, channels, kernel, spatial_kernel),
            _ChannelNorm(channels),
            nn.SiLU(),
            _CausalConv3d(channels, channels, kernel, spatial_kernel),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _encoder(cfg: VidTokConfig) -> tuple[nn.Sequential, int]:
    """``(B, 1, T, H, W)`` -> ``(B, len(fsq_levels), T', H', W')``; also the widest width."""
    k, ks = cfg.kernel_size, cfg.spatial_kernel_size
    width = cfg.channels
    layers: list[nn.Module] = [_CausalConv3d(1, width, k, ks)]
    for st, ss in cfg.blocks:
        layers += [_ResidualBlock(width, k, ks) for _ in range(cfg.n_residual)]
        # time kernel 2 st (at least 1), space kernel odd and covering the stride
        layers += [
            nn.SiLU(),
            _CausalConv3d(
                width,
                2 * width,
                max(2 * st, 1),
                2 * (ss // 2) + 1,
                time_stride=st,
                space_stride=ss,
            ),
        ]
        width *= 2
    layers += [_ResidualBlock(width, k, ks) for _ in range(cfg.n_residual)]
    layers += [_ChannelNorm(width), nn.SiLU(), _CausalConv3d(width, len(cfg.fsq_levels), k, ks)]
    return nn.Sequential(*layers), width


def _decoder(cfg: VidTokConfig, width: int) -> nn.Sequential:
    """``(B, len(fsq_levels), T', H', W')`` -> ``(B, channels, T, H, W)``, the encoder
    mirrored (before the final delay and output convolution)."""
    k, ks = cfg.kernel_size, cfg.spatial_kernel_size
    layers: list[nn.Module] = [_CausalConv3d(len(cfg.fsq_levels), width, k, ks)]
    layers += [_ResidualBlock(width, k, ks) for _ in range(cfg.n_residual)]
    for st, ss in reversed(cfg.blocks):
        layers += [nn.SiLU(), _CausalUpsample(width, width // 2, st, ss)]
        width //= 2
        layers += [_ResidualBlock(width, k, ks) for _ in range(cfg.n_residual)]
    return nn.Sequential(*layers)


class VidTokFSQ(Component, nn.Module):
    """A causal tokenizer of sensor images: 3-D convolutions and finite scalar quantisation.

    1. **Encoder**: the image ``(B, H, W, T)`` is read as a one-channel clip
       ``(B, 1, T, H, W)``; a causal 3-D stem, then per downsampling block (``time_strides``
       and ``space_strides`` paired, a missing stride being 1) residual blocks and a strided
       causal 3-D convolution (width doubling), then a projection to ``len(fsq_levels)``
       channels. Time shrinks by ``time_stride = prod(time_strides)``, each image side by
       ``space_stride = prod(space_strides)``.
    2. **FSQ**: every latent voxel becomes one code in ``[0, prod(fsq_levels))``.
    3. **Decoder**: the encoder mirrored, with causal transposed convolutions, delayed by
       ``time_stride - 1`` samples and projected back to one channel.

    Inputs are float ``(B, H, W, T)`` sensor images (the items of the ``sensor_image``
    dataset) with ``H`` and ``W`` multiples of ``space_stride`` and ``T`` of ``time_stride``.
    ``forward`` returns a dict whose first entry is the primary output::

        {"reconstruction": (B, H, W, T), "codes": (B, T', H', W') int64,
         "commitment": 0-dim zero, "metrics": {"usage", "perplexity"}}

    which the ``tokenizer_reconstruction`` loss consumes (its terms run over the last axis,
    time). See the module documentation for the causality guaranteed.
    """

    Config: ClassVar[type[VidTokConfig]] = VidTokConfig
    causal: ClassVar[bool] = True
    input_time_axis: ClassVar[int] = -1
    output_time_axis: ClassVar[int] = -1
    example_steps: ClassVar[int] = 4  # code steps of example_input
    example_side: ClassVar[int] = 2  # code pixels along each side of example_input
    #: the registered tokenizer a trained model is exported as (``ephys tokenizer export``)
    tokenizer_name: ClassVar[str] = "vidtok_fsq"

    config: VidTokConfig

    def __init__(self, config: VidTokConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder, width = _encoder(config)
        self.quantizer = FiniteScalarQuantizer(config.fsq_levels)
        self.decoder = _decoder(config, width)
        k, ks = config.kernel_size, config.spatial_kernel_size
        self.head = nn.Sequential(
            _ChannelNorm(config.channels), nn.SiLU(), _CausalConv3d(config.channels, 1, k, ks)
        )
        log.debug(
            "vidtok_fsq: %d parameters, time stride %d, space stride %d, %d codes",
            sum(p.numel() for p in self.parameters()),
            self.time_stride,
            self.space_stride,
            self.vocab_size,
        )

    @classmethod
    def example_config(cls, workdir: Any = None) -> VidTokConfig:
        return cls.Config(
            channels=4,
            time_strides=[2, 2],
            space_strides=[2],
            n_residual=1,
            kernel_size=3,
            spatial_kernel_size=3,
            fsq_levels=[5, 4, 3],
        )

    # -- properties ----------------------------------------------------------------------
    @property
    def time_stride(self) -> int:
        """Input samples per code step (``prod(time_strides)``)."""
        return self.config.time_stride

    @property
    def space_stride(self) -> int:
        """Pixels per code along each image side (``prod(space_strides)``)."""
        return self.config.space_stride

    @property
    def vocab_size(self) -> int:
        """Codes lie in ``[0, vocab_size)`` (``prod(fsq_levels)``)."""
        return self.config.vocab_size

    # -- inputs --------------------------------------------------------------------------
    def _image(self, x: Any) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.dtype.is_floating_point:
            got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x)
            raise ValueError(
                "vidtok_fsq: inputs must be float (B, H, W, T) sensor images (the items of the "
                f"`sensor_image` dataset); got {got}"
            )
        _, h, w, t = x.shape
        if t % self.time_stride:
            raise ValueError(
                f"vidtok_fsq: {t} time samples are not a multiple of the time stride "
                f"{self.time_stride}"
            )
        if h % self.space_stride or w % self.space_stride:
            raise ValueError(
                f"vidtok_fsq: images of {h} x {w} pixels are not multiples of the space stride "
                f"{self.space_stride}"
            )
        return x

    def _latents(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, H, W, T)`` -> latents ``(B, len(fsq_levels), T', H', W')``."""
        weight = self.encoder[0].conv.weight
        clip = x.to(weight.dtype).permute(0, 3, 1, 2).unsqueeze(1)  # (B, 1, T, H, W)
        return self.encoder(clip)

    def _reconstruct(self, quantized: torch.Tensor) -> torch.Tensor:
        """Quantised latents ``(B, dim, T', H', W')`` -> images ``(B, H, W, T)``."""
        h = self.decoder(quantized)  # (B, C, T, H, W): sample n reads steps <= n // stride
        t = quantized.shape[2] * self.time_stride
        # delay by stride - 1: sample n then reads code steps k with (k + 1) stride - 1 <= n
        h = F.pad(h, (0, 0, 0, 0, self.time_stride - 1, 0))[:, :, :t]
        return self.head(h)[:, 0].permute(0, 2, 3, 1)

    def forward(self, x: Any) -> dict[str, Any]:
        """Encode, quantise and reconstruct a batch (see the class documentation)."""
        out = self.quantizer(self._latents(self._image(x)))
        return {
            "reconstruction": self._reconstruct(out.quantized),
            "codes": out.codes,
            "commitment": out.loss,
            "metrics": out.metrics,
        }

    @torch.no_grad()
    def encode(self, x: Any) -> torch.Tensor:
        """int64 codes ``(B, T / time_stride, H / space_stride, W / space_stride)``."""
        return self.quantizer.encode(self._latents(self._image(x)))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images ``(B, H' space_stride, W' space_stride, T' time_stride)`` from int64 codes
        ``(B, T', H', W')``."""
        if codes.ndim != 4:
            raise ValueError(f"vidtok_fsq: codes must be (B, T', H', W'); got {tuple(codes.shape)}")
        weight = self.encoder[0].conv.weight
        quantized = self.quantizer.decode(codes.to(weight.device)).to(weight.dtype)
        return self._reconstruct(quantized)

    # -- conformance ---------------------------------------------------------------------
    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        """Random images of 2 x 2 codes a side over 4 code steps."""
        gen = torch.Generator().manual_seed(0)
        side, t = self.example_side * self.space_stride, self.example_steps * self.time_stride
        return torch.randn(batch_size, side, side, t, generator=gen)

    def output_shape(self, inputs: Any) -> tuple[int, ...]:
        """``(B, H, W, T)``: the reconstruction has the shape of the input."""
        return tuple(inputs.shape)
