"""BrainTokMix: a causal SEANet-style tokenizer that mixes all channels in its first
convolution and splits the joint encoding into a few spatial tokens, quantised by RVQ.

brain-gen's channel-mixing variant of the BrainOmni tokenizer ("Scaling Next-Brain-Token
Prediction for MEG", arXiv 2601.20138). Where :class:`~ephys_models.brainomni.BrainOmni`
encodes each sensor alone and summarises the sensors by cross-attention (so the codes do not
depend on the montage), this model reads the ``C`` channels of one montage jointly: cheaper
per step and able to use the covariance of the channels from the first layer on, but bound
to the montage it was trained on.

torch is imported at module level: ephys imports this module only when the model is used.

Causality
---------
As in :mod:`ephys_models.seanet`: with ``S = time_stride``, code step ``k`` depends only on
input samples ``<= (k + 1) S - 1``, and reconstructed sample ``t`` only on code steps ``k``
with ``(k + 1) S - 1 <= t``, so on input samples ``<= t``; the first ``S - 1`` reconstructed
samples read no code. This holds in eval mode, and in training except on the first forward,
whose k-means initialisation of the codebooks reads the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ephys_core.components import Component
from ephys_core.logging import get_logger
from ephys_models.configs.braintokmix import BrainTokMixConfig
from ephys_models.seanet import CausalConv1d, SEANetCodec, delay, seanet_decoder, seanet_encoder
from ephys_tokenizers.quantizers import ResidualVectorQuantizer

__all__ = ["BrainTokMix"]

log = get_logger(__name__)


class BrainTokMix(SEANetCodec, Component, nn.Module):
    """A causal tokenizer of one montage: channels mixed jointly, ``n_latents`` spatial
    tokens per code step, residual vector quantisation.

    1. **Encoder**: a causal SEANet stack over all ``n_channels`` channels at once (the stem
       mixes them), residual units with dilated causal convolutions and strided causal
       convolutions (width doubling), then a projection to ``n_latents * dim`` features per
       code step; time shrinks by ``time_stride = prod(strides)``.
    2. **Spatial tokens**: the features of a step are split into ``n_latents`` vectors of
       ``dim`` values.
    3. **Residual VQ** of every vector: ``levels`` codes in ``[0, codebook_size)``.
    4. **Decoder**: the mirrored causal upsampling stack over the joined quantised tokens,
       delayed by ``time_stride - 1`` samples, and a causal convolution to the channels.

    Inputs are a float ``(B, C, T)`` signal, or a mapping with one under ``"x"`` (the items
    of the ``reconstruction`` dataset; other entries are ignored), with ``T`` a multiple of
    ``time_stride``. ``forward`` returns a dict whose first entry is the primary output::

        {"reconstruction": (B, C, T), "codes": (B, levels, n_latents, T / time_stride) int64,
         "commitment": 0-dim quantiser loss, "metrics": {"usage", "perplexity", ...}}

    which the ``tokenizer_reconstruction`` loss consumes. After brain-gen's BrainTokMix
    ("Scaling Next-Brain-Token Prediction for MEG", arXiv 2601.20138).
    """

    Config: ClassVar[type[BrainTokMixConfig]] = BrainTokMixConfig
    causal: ClassVar[bool] = True
    input_time_axis: ClassVar[int] = -1
    output_time_axis: ClassVar[int] = -1
    example_steps: ClassVar[int] = 8  # code steps of example_input
    #: the registered tokenizer a trained model is exported as (``ephys tokenizer export``)
    tokenizer_name: ClassVar[str] = "braintokmix"

    config: BrainTokMixConfig

    def __init__(self, config: BrainTokMixConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        features = cfg.n_latents * cfg.dim
        self.encoder, width = seanet_encoder(cfg, cfg.n_channels, features)
        self.quantizer = ResidualVectorQuantizer(cfg.dim, **cfg.quantizer_params())
        self.decoder, width = seanet_decoder(cfg, features, width)
        self.head = nn.Sequential(nn.ELU(), CausalConv1d(width, cfg.n_channels, cfg.kernel_size))
        log.debug(
            "braintokmix: %d parameters, %d channels, stride %d, %d latents x %d levels of %d",
            sum(p.numel() for p in self.parameters()),
            cfg.n_channels,
            self.time_stride,
            cfg.n_latents,
            cfg.levels,
            cfg.codebook_size,
        )

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> BrainTokMixConfig:
        return cls.Config(
            n_channels=5,
            channels=4,
            strides=[2, 2],
            dilations=[1, 2],
            kernel_size=3,
            dim=8,
            n_latents=3,
            codebook_size=8,
            levels=2,
        )

    # -- the network ---------------------------------------------------------------------
    def _signal(self, inputs: Any) -> torch.Tensor:
        x = inputs["x"] if isinstance(inputs, Mapping) and "x" in inputs else inputs
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or not x.dtype.is_floating_point:
            got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                "braintokmix: inputs must be a float (B, C, T) signal, or a mapping with one "
                f"under 'x'; got {got}"
            )
        if x.shape[1] != self.config.n_channels:
            raise ValueError(
                f"braintokmix: the model mixes {self.config.n_channels} channels; the signal "
                f"has {x.shape[1]}"
            )
        if x.shape[-1] % self.time_stride:
            raise ValueError(
                f"braintokmix: {x.shape[-1]} time samples are not a multiple of the time "
                f"stride {self.time_stride}"
            )
        return x

    def _latents(self, x: torch.Tensor) -> torch.Tensor:
        """Signal ``(B, C, T)`` -> latents ``(B, dim, L, T')``."""
        h = self.encoder(x)  # (B, L * D, T')
        b, _, steps = h.shape
        return h.reshape(b, self.n_latents, self.config.dim, steps).transpose(1, 2)

    def _reconstruct(self, quantized: torch.Tensor) -> torch.Tensor:
        """Quantised latents ``(B, dim, L, T')`` -> signal ``(B, C, T' * stride)``."""
        b, d, n_latents, steps = quantized.shape
        h = quantized.transpose(1, 2).reshape(b, n_latents * d, steps)
        return self.head(delay(self.decoder(h), self.time_stride))

    def forward(self, inputs: Any) -> dict[str, Any]:
        """Encode, quantise and reconstruct a batch (see the class documentation)."""
        out = self.quantizer(self._latents(self._signal(inputs)))
        return {
            "reconstruction": self._reconstruct(out.quantized),
            "codes": out.codes,
            "commitment": out.loss,
            "metrics": out.metrics,
        }

    @torch.no_grad()
    def encode(self, inputs: Any) -> torch.Tensor:
        """int64 codes ``(B, levels, n_latents, T / time_stride)``; changes no state."""
        return self.quantizer.encode(self._latents(self._signal(inputs)))

    def decode(self, codes: torch.Tensor, n_levels: int | None = None) -> torch.Tensor:
        """Signal ``(B, C, T' * time_stride)`` from int64 codes ``(B, levels', n_latents,
        T')``; ``n_levels`` decodes only the first levels (coarser)."""
        if codes.ndim != 4 or codes.shape[2] != self.n_latents:
            raise ValueError(
                f"braintokmix: codes must be (B, levels, {self.n_latents}, T'); got "
                f"{tuple(codes.shape)}"
            )
        quantized = self.quantizer.decode(codes, n_levels).to(self.head[1].conv.weight.dtype)
        return self._reconstruct(quantized)

    # -- conformance ---------------------------------------------------------------------
    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        """Random signals of the model's channels over 8 code steps."""
        gen = torch.Generator().manual_seed(0)
        t = self.example_steps * self.time_stride
        return torch.randn(batch_size, self.config.n_channels, t, generator=gen)

    def output_shape(self, inputs: Any) -> tuple[int, ...]:
        """``(B, C, T)``: the reconstruction has the shape of the signal."""
        return tuple(self._signal(inputs).shape)
