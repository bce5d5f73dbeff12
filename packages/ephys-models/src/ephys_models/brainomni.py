"""BrainOmni-style learned tokenizer: per-sensor causal convolutions, cross-attention from the
sensors to a fixed set of latent channels, and residual vector quantisation.

After Xiao et al. 2025, "BrainOmni: A Brain Foundation Model for Unified EEG and MEG Signals"
(arXiv 2505.18185): the codes do not depend on the montage, because the sensors (each embedded
from its position, orientation and type) are summarised into ``n_latents`` latent channels
before quantisation, and a mirrored decoder reconstructs any set of sensors from them.

torch is imported at module level: ephys imports this module only when the model is used.

Causality
---------
Every convolution pads on the left only and every attention mixes sensors or latents within
one time step, never time steps. With ``S = time_stride``:

* code step ``k`` depends only on input samples ``<= (k + 1) S - 1`` (the samples it covers and
  earlier ones);
* reconstructed sample ``t`` depends only on code steps ``k`` with ``(k + 1) S - 1 <= t``, so
  on input samples ``<= t``. The decoder's upsampling gives sample ``n`` of a block the codes
  of its own step and earlier; its output is then delayed by ``S - 1`` samples, so that the
  last sample a code step covers is the first one it contributes to. The first ``S - 1``
  reconstructed samples see no code at all (they are the decoder's learned constant).

This holds in eval mode and in training mode except on the very first training forward, whose
k-means initialisation of the codebooks reads the whole batch (in training the codebooks move
after each forward, towards the batch: the codes of a forward use the codebooks from before).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ephys_core.components import Component
from ephys_core.logging import get_logger
from ephys_models.configs.brainomni import BrainOmniConfig
from ephys_models.seanet import CausalConv1d, SEANetCodec, delay, seanet_decoder, seanet_encoder
from ephys_tokenizers.quantizers import ResidualVectorQuantizer

__all__ = ["BrainOmni"]

log = get_logger(__name__)

# positions of a montage without a fixed geometry_dim: zero-padded to 6 values plus a flag
_FLEX_GEOMETRY = 7


class _SensorEmbedding(nn.Module):
    """An MLP of each sensor's geometry plus a learned vector per sensor type."""

    def __init__(self, geometry: int, n_types: int, dim: int) -> None:
        super().__init__()
        self.position = nn.Sequential(nn.Linear(geometry, dim), nn.GELU(), nn.Linear(dim, dim))
        self.kind = nn.Embedding(n_types, dim)

    def forward(self, pos: torch.Tensor, ch_type: torch.Tensor) -> torch.Tensor:
        return self.position(pos) + self.kind(ch_type)


class _CrossAttention(nn.Module):
    """Pre-norm cross-attention of ``(N, Q, D)`` queries over ``(N, K, D)`` context, then an
    MLP; both residual. Each of the ``N`` rows is one example at one time step."""

    def __init__(self, dim: int, heads: int, ffn_mult: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_mult * dim), nn.GELU(), nn.Linear(ffn_mult * dim, dim)
        )

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        n, nq, d = queries.shape
        h = self.heads
        q = self.q(self.norm_q(queries)).reshape(n, nq, h, d // h).transpose(1, 2)
        k, v = self.kv(self.norm_kv(context)).reshape(n, -1, 2, h, d // h).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v)  # (N, H, Q, D / H)
        x = queries + self.out(attended.transpose(1, 2).reshape(n, nq, d))
        return x + self.ffn(self.norm_ffn(x))


class BrainOmni(SEANetCodec, Component, nn.Module):
    """A causal, montage-independent tokenizer of MEG/EEG with residual vector quantisation.

    1. **Per-sensor encoder**: the same causal SEANet-style stack runs on every sensor's time
       series: a stem, then per entry of ``strides`` residual units with dilated causal
       convolutions and ELUs and a strided causal convolution (width doubling), then a
       projection to ``dim``; time shrinks by ``time_stride = prod(strides)``.
    2. **Sensor embedding**: an MLP of each sensor's geometry (2-D layout position, or 3-D
       position and orientation) plus a learned embedding of its type.
    3. **Sensors -> latents**: at each code step ``n_latents`` learned queries attend over the
       sensors (keys: sensor features plus sensor embedding), giving latents
       ``(B, dim, n_latents, T')`` whose shape does not depend on the montage.
    4. **Residual VQ** of every latent vector: ``levels`` codes in ``[0, codebook_size)``.
    5. **Decoder**: at each step every sensor's query (from its embedding) attends over the
       quantised latents (plus a learned embedding of each latent slot), then the mirrored
       causal upsampling stack gives each sensor's signal.

    Inputs are ``{"x": (B, C, T) float, "pos": (B, C, P) or (C, P), "ch_type": (B, C) or
    (C,) int}`` (the items of the ``reconstruction`` dataset, ``P`` 2 or 6), with ``T`` a
    multiple of ``time_stride``; other entries are ignored. ``forward`` returns a dict whose
    first entry is the primary output::

        {"reconstruction": (B, C, T), "codes": (B, levels, n_latents, T / time_stride) int64,
         "commitment": 0-dim quantiser loss, "metrics": {"usage", "perplexity", ...}}

    which the ``tokenizer_reconstruction`` loss consumes. See the module documentation for the
    causality guaranteed: reconstructed sample ``t`` depends on input samples ``<= t`` only.
    """

    Config: ClassVar[type[BrainOmniConfig]] = BrainOmniConfig
    causal: ClassVar[bool] = True
    input_time_axis: ClassVar[int] = -1
    output_time_axis: ClassVar[int] = -1
    example_steps: ClassVar[int] = 8  # code steps of example_input
    example_sensors: ClassVar[int] = 5
    #: the registered tokenizer a trained model is exported as (``ephys tokenizer export``)
    tokenizer_name: ClassVar[str] = "brainomni"

    config: BrainOmniConfig

    def __init__(self, config: BrainOmniConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        geometry = _FLEX_GEOMETRY if cfg.geometry_dim is None else cfg.geometry_dim
        self.encoder, width = seanet_encoder(cfg, 1, cfg.dim)
        self.sensors = _SensorEmbedding(geometry, cfg.n_sensor_types, cfg.dim)
        self.latent_queries = nn.Parameter(torch.randn(cfg.n_latents, cfg.dim) * 0.02)
        self.to_latents = _CrossAttention(cfg.dim, cfg.n_heads, cfg.ffn_mult)
        self.pre_quant = nn.Linear(cfg.dim, cfg.dim)
        self.quantizer = ResidualVectorQuantizer(cfg.dim, **cfg.quantizer_params())
        self.latent_slots = nn.Parameter(torch.randn(cfg.n_latents, cfg.dim) * 0.02)
        self.sensor_queries = nn.Linear(cfg.dim, cfg.dim)
        self.to_sensors = _CrossAttention(cfg.dim, cfg.n_heads, cfg.ffn_mult)
        self.decoder, width = seanet_decoder(cfg, cfg.dim, width)
        self.head = nn.Sequential(nn.ELU(), CausalConv1d(width, 1, cfg.kernel_size))
        log.debug(
            "brainomni: %d parameters, stride %d, %d latents x %d levels of %d codes",
            sum(p.numel() for p in self.parameters()),
            self.time_stride,
            cfg.n_latents,
            cfg.levels,
            cfg.codebook_size,
        )

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> BrainOmniConfig:
        return cls.Config(
            n_sensor_types=3,
            channels=4,
            strides=[2, 2],
            dilations=[1, 2],
            kernel_size=3,
            dim=8,
            n_latents=3,
            n_heads=2,
            ffn_mult=1,
            codebook_size=8,
            levels=2,
        )

    # -- inputs --------------------------------------------------------------------------
    def _signal(self, inputs: Any) -> torch.Tensor:
        if not isinstance(inputs, Mapping) or not {"x", "pos", "ch_type"} <= set(inputs):
            got = sorted(inputs) if isinstance(inputs, Mapping) else type(inputs).__name__
            raise ValueError(
                "brainomni: inputs must be a mapping with 'x' (B, C, T), 'pos' and 'ch_type' "
                f"(the items of the `reconstruction` dataset); got {got}"
            )
        x = inputs["x"]
        if x.ndim != 3 or not x.dtype.is_floating_point:
            raise ValueError(
                f"brainomni: 'x' must be a float (B, C, T) signal; got {x.dtype} {tuple(x.shape)}"
            )
        if x.shape[-1] % self.time_stride:
            raise ValueError(
                f"brainomni: {x.shape[-1]} time samples are not a multiple of the time stride "
                f"{self.time_stride}"
            )
        return x

    def _sensor_embedding(self, pos: Any, ch_type: Any, batch: int) -> torch.Tensor:
        """``(B, C, dim)`` embeddings of the sensors, from batched or shared geometry."""
        weight = self.sensors.kind.weight
        pos = torch.as_tensor(pos).to(device=weight.device, dtype=weight.dtype)
        ch_type = torch.as_tensor(ch_type, device=weight.device)
        if pos.ndim == 2:
            pos = pos.unsqueeze(0)
        if ch_type.ndim == 1:
            ch_type = ch_type.unsqueeze(0)
        if pos.ndim != 3 or ch_type.ndim != 2 or pos.shape[1] != ch_type.shape[1]:
            raise ValueError(
                "brainomni: 'pos' must be (B, C, P) or (C, P) and 'ch_type' (B, C) or (C,) "
                f"for the same C; got {tuple(pos.shape)} and {tuple(ch_type.shape)}"
            )
        if pos.shape[0] not in (1, batch) or ch_type.shape[0] not in (1, batch):
            raise ValueError(
                f"brainomni: geometry for batches of {pos.shape[0]} and {ch_type.shape[0]}, "
                f"but the batch holds {batch} examples"
            )
        p = pos.shape[-1]
        expected = self.config.geometry_dim
        if expected is not None and p != expected:
            raise ValueError(
                f"brainomni: 'pos' has {p} values per sensor, but geometry_dim is {expected} "
                "(2: layout positions, `reconstruction` geometry 2d; 6: 3-D position and "
                "orientation, geometry 3d); set geometry_dim to match the data, or leave it "
                "unset to accept both"
            )
        if expected is None:
            if p not in (2, 6):
                raise ValueError(
                    f"brainomni: 'pos' must hold 2 (layout) or 6 (3-D position + orientation) "
                    f"values per sensor; got {p}"
                )
            flag = torch.full_like(pos[..., :1], 1.0 if p == 2 else 0.0)
            pos = torch.cat([F.pad(pos, (0, 6 - p)), flag], dim=-1)
        if ch_type.dtype.is_floating_point or ch_type.dtype == torch.bool:
            raise ValueError(f"brainomni: 'ch_type' must hold integers; got {ch_type.dtype}")
        if ch_type.numel():
            low, high = (int(v) for v in torch.aminmax(ch_type))
            if low < 0 or high >= self.config.n_sensor_types:
                raise ValueError(
                    f"brainomni: sensor types lie in [{low}, {high}], outside "
                    f"[0, n_sensor_types={self.config.n_sensor_types})"
                )
        embedding = self.sensors(pos, ch_type.long())
        return embedding.expand(batch, -1, -1)

    # -- the network ---------------------------------------------------------------------
    def _latents(self, x: torch.Tensor, sensors: torch.Tensor) -> torch.Tensor:
        """Signal ``(B, C, T)`` and sensor embeddings -> latents ``(B, dim, L, T')``."""
        b, c, t = x.shape
        if sensors.shape[1] != c:
            raise ValueError(
                f"brainomni: 'x' has {c} sensors but the geometry describes {sensors.shape[1]}"
            )
        d, steps = self.config.dim, t // self.time_stride
        features = self.encoder(x.reshape(b * c, 1, t)).reshape(b, c, d, steps)
        context = features.permute(0, 3, 1, 2) + sensors.unsqueeze(1)  # (B, T', C, D)
        queries = self.latent_queries.expand(b * steps, -1, -1)
        latents = self.to_latents(queries, context.reshape(b * steps, c, d))
        latents = self.pre_quant(latents).reshape(b, steps, self.n_latents, d)
        return latents.permute(0, 3, 2, 1)

    def _reconstruct(self, quantized: torch.Tensor, sensors: torch.Tensor) -> torch.Tensor:
        """Quantised latents ``(B, dim, L, T')`` -> signal ``(B, C, T' * stride)``."""
        b, d, n_latents, steps = quantized.shape
        c = sensors.shape[1]
        context = quantized.permute(0, 3, 2, 1) + self.latent_slots  # (B, T', L, D)
        queries = self.sensor_queries(sensors).unsqueeze(1).expand(b, steps, c, d)
        h = self.to_sensors(
            queries.reshape(b * steps, c, d), context.reshape(b * steps, n_latents, d)
        )
        h = h.reshape(b, steps, c, d).permute(0, 2, 3, 1).reshape(b * c, d, steps)
        h = delay(self.decoder(h), self.time_stride)  # (B * C, width, T)
        return self.head(h).reshape(b, c, steps * self.time_stride)

    def forward(self, inputs: Any) -> dict[str, Any]:
        """Encode, quantise and reconstruct a batch (see the class documentation)."""
        x = self._signal(inputs)
        sensors = self._sensor_embedding(inputs["pos"], inputs["ch_type"], x.shape[0])
        out = self.quantizer(self._latents(x, sensors))
        return {
            "reconstruction": self._reconstruct(out.quantized, sensors),
            "codes": out.codes,
            "commitment": out.loss,
            "metrics": out.metrics,
        }

    @torch.no_grad()
    def encode(self, inputs: Any) -> torch.Tensor:
        """int64 codes ``(B, levels, n_latents, T / time_stride)`` of a batch.

        Changes no state (the codebooks move only in training forwards), so the same inputs
        always give the same codes.
        """
        x = self._signal(inputs)
        sensors = self._sensor_embedding(inputs["pos"], inputs["ch_type"], x.shape[0])
        return self.quantizer.encode(self._latents(x, sensors))

    def decode(
        self, codes: torch.Tensor, pos: Any, ch_type: Any, n_levels: int | None = None
    ) -> torch.Tensor:
        """Signal ``(B, C, T' * time_stride)`` of the sensors ``pos``/``ch_type`` from codes.

        Parameters
        ----------
        codes
            int64 ``(B, levels', n_latents, T')`` (``levels' <= levels``).
        pos, ch_type
            The sensors to reconstruct: ``(B, C, P)`` or ``(C, P)`` and ``(B, C)`` or
            ``(C,)``; any montage, not necessarily the encoded one.
        n_levels
            Decode only the first levels (coarser); all given levels by default.
        """
        if codes.ndim != 4 or codes.shape[2] != self.n_latents:
            raise ValueError(
                f"brainomni: codes must be (B, levels, {self.n_latents}, T'); got "
                f"{tuple(codes.shape)}"
            )
        sensors = self._sensor_embedding(pos, ch_type, codes.shape[0])
        quantized = self.quantizer.decode(codes, n_levels).to(sensors.dtype)
        return self._reconstruct(quantized, sensors)

    # -- conformance ---------------------------------------------------------------------
    def example_input(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Random signals of 5 sensors over 8 code steps, with 3-D (or 2-D) geometry."""
        gen = torch.Generator().manual_seed(0)
        c, t = self.example_sensors, self.example_steps * self.time_stride
        p = self.config.geometry_dim or 6
        return {
            "x": torch.randn(batch_size, c, t, generator=gen),
            "pos": torch.randn(batch_size, c, p, generator=gen),
            "ch_type": torch.randint(0, self.config.n_sensor_types, (batch_size, c), generator=gen),
        }

    def output_shape(self, inputs: Any) -> tuple[int, ...]:
        """``(B, C, T)``: the reconstruction has the shape of ``inputs["x"]``."""
        return tuple(inputs["x"].shape)
