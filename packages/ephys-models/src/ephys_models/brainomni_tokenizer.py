"""The ``brainomni`` tokenizer: a trained :class:`~ephys_models.brainomni.BrainOmni` model
with the montage it encodes, as a tokenizer folder (``ephys tokenizer export``).

Codes of one recording are ``(levels * n_latents, T / time_stride)``: row ``l * n_latents + j``
is level ``l`` of latent channel ``j`` (the ``(levels, n_latents, T')`` grid flattened level
by level), in ``[0, codebook_size)``. The weights are the tokenizer's state (``state.npz``);
the model parameters and the montage are its parameters, so its identity covers all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ephys_core.components import Component
from ephys_models.brainomni import BrainOmni, _CausalConv
from ephys_models.configs.brainomni import BrainOmniConfig, BrainOmniTokenizerConfig

__all__ = ["BrainOmniTokenizer", "receptive_field"]

_WEIGHTS = "weights/"


def receptive_field(model: BrainOmni) -> int:
    """Input samples one code step depends on (its own ``time_stride`` and the history)."""
    field, jump = 1, 1
    for module in model.encoder.modules():
        if isinstance(module, _CausalConv):
            conv = module.conv
            field += (conv.kernel_size[0] - 1) * conv.dilation[0] * jump
            jump *= conv.stride[0]
    return field


class BrainOmniTokenizer(Component):
    """Encode a montage's signals to brainomni codes, and decode them onto the montage.

    ``encode``: ``(..., C, T)`` in the units the model was trained on -> int64 codes
    ``(..., levels * n_latents, T // time_stride)`` (samples past the last whole code step
    are dropped). ``decode``: codes -> float32 ``(..., C, T' * time_stride)``. numpy in,
    numpy out; torch in, torch out. Causal: code step ``k`` depends on samples
    ``< (k + 1) * time_stride`` only.
    """

    Config: ClassVar[type[BrainOmniTokenizerConfig]] = BrainOmniTokenizerConfig
    causal: ClassVar[bool] = True
    samplewise: ClassVar[bool] = False
    requires_fit: ClassVar[bool] = False  # trained with `ephys train`, then exported
    #: a learned tokenizer promises no accuracy of its own: its card measures it
    roundtrip_tolerance: ClassVar[float | None] = None

    def __init__(self, config: BrainOmniTokenizerConfig | None = None) -> None:
        self.config = config or self.example_config()
        self.model = BrainOmni(BrainOmniConfig(**self.config.model)).eval()
        self._pos = torch.tensor(self.config.pos, dtype=torch.float32)
        self._types = torch.tensor(self.config.ch_type, dtype=torch.int64)
        self.field = receptive_field(self.model)

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> BrainOmniTokenizerConfig:
        """A tiny untrained model over a montage of five sensors with 3-D geometry."""
        model = BrainOmni.example_config().model_dump(mode="json")
        rng = np.random.default_rng(0)
        return BrainOmniTokenizerConfig(
            model=model,
            ch_names=[f"S{i}" for i in range(5)],
            pos=rng.standard_normal((5, 6)).round(4).tolist(),
            ch_type=[0, 1, 2, 0, 1],
        )

    # -- what the codes are ---------------------------------------------------------------
    @property
    def time_stride(self) -> int:  # type: ignore[override]
        return self.model.time_stride

    @property
    def vocab_size(self) -> int:
        return self.model.codebook_size

    @property
    def n_channels(self) -> int:
        """Channels of the montage."""
        return len(self.config.ch_names)

    @property
    def ch_names(self) -> list[str]:
        """The montage's channels, in the order :meth:`encode` takes them."""
        return list(self.config.ch_names)

    @property
    def code_rows(self) -> int:
        """Rows of the codes: ``levels * n_latents``."""
        return self.model.levels * self.model.n_latents

    # -- codec ------------------------------------------------------------------------------
    def _batch(self, x: Any) -> tuple[torch.Tensor, tuple[int, ...], bool]:
        as_torch = isinstance(x, torch.Tensor)
        tensor = (
            x.detach().float().cpu()
            if as_torch
            else torch.as_tensor(np.asarray(x), dtype=torch.float32)
        )
        if tensor.ndim < 2 or tensor.shape[-2] != self.n_channels:
            raise ValueError(
                f"the brainomni tokenizer encodes its montage of {self.n_channels} channels; "
                f"got an array of shape {tuple(tensor.shape)}"
            )
        lead = tuple(tensor.shape[:-2])
        return tensor.reshape(-1, *tensor.shape[-2:]), lead, as_torch

    def _encode_block(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode({"x": x, "pos": self._pos, "ch_type": self._types})

    def encode(self, signal: Any) -> Any:
        """Signal -> codes (see the class docstring), in blocks of ``block_steps`` steps."""
        x, lead, as_torch = self._batch(signal)
        if not torch.isfinite(x).all():
            raise ValueError(
                "the signal holds NaN or infinite samples; brainomni cannot encode them"
            )
        stride = self.time_stride
        steps = x.shape[-1] // stride
        x = x[..., : steps * stride]
        overlap = -(-(self.field - stride) // stride)  # whole code steps of history
        block = self.config.block_steps
        parts = []
        with torch.no_grad():
            for first in range(0, steps, block):
                last = min(first + block, steps)
                start = max(0, first - overlap)
                codes = self._encode_block(x[..., start * stride : last * stride])
                parts.append(codes[..., first - start :])
        codes = (
            torch.cat(parts, dim=-1)
            if parts
            else torch.zeros(
                (x.shape[0], self.model.levels, self.model.n_latents, 0), dtype=torch.int64
            )
        )
        codes = codes.reshape(*lead, self.code_rows, steps)
        return codes if as_torch else codes.numpy()

    def decode(self, codes: Any) -> Any:
        """Codes ``(..., levels * n_latents, T')`` -> float32 ``(..., C, T' * time_stride)``."""
        as_torch = isinstance(codes, torch.Tensor)
        k = (
            codes.detach().cpu().long()
            if as_torch
            else torch.as_tensor(np.asarray(codes, dtype=np.int64))
        )
        if k.ndim < 2 or k.shape[-2] != self.code_rows:
            raise ValueError(
                f"brainomni codes have {self.code_rows} rows (levels x latents); got shape "
                f"{tuple(k.shape)}"
            )
        if k.numel() and (int(k.min()) < 0 or int(k.max()) >= self.vocab_size):
            raise ValueError(f"codes must lie in [0, {self.vocab_size})")
        lead = tuple(k.shape[:-2])
        grid = k.reshape(-1, self.model.levels, self.model.n_latents, k.shape[-1])
        with torch.no_grad():
            signal = self.model.decode(grid, self._pos, self._types)
        signal = signal.reshape(*lead, self.n_channels, signal.shape[-1]).float()
        return signal if as_torch else signal.numpy()

    # -- persistence --------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """The model's weights and buffers."""
        return {
            _WEIGHTS + name: value.detach().cpu().numpy()
            for name, value in self.model.state_dict().items()
        }

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load weights from :meth:`state`."""
        weights = {
            name[len(_WEIGHTS) :]: torch.from_numpy(np.array(value))
            for name, value in state.items()
            if name.startswith(_WEIGHTS)
        }
        self.model.load_state_dict(weights)
        self.model.eval()

    @classmethod
    def from_model(
        cls, model: BrainOmni, ch_names: list[str], pos: np.ndarray, ch_type: np.ndarray
    ) -> BrainOmniTokenizer:
        """The tokenizer of a trained model and the montage it was trained on."""
        config = BrainOmniTokenizerConfig(
            model=model.config.model_dump(mode="json"),
            ch_names=list(ch_names),
            pos=np.asarray(pos, dtype=np.float64).tolist(),
            ch_type=np.asarray(ch_type, dtype=np.int64).tolist(),
        )
        tokenizer = cls(config)
        tokenizer.model.load_state_dict(model.state_dict())
        tokenizer.model.eval()
        return tokenizer

    @classmethod
    def from_trained(cls, model: BrainOmni, builder: Any) -> BrainOmniTokenizer:
        """The tokenizer of a trained model over the montage of ``builder``, the
        ``reconstruction`` dataset it was trained on (what ``ephys tokenizer export`` saves)."""
        return cls.from_model(model, builder.ch_names, builder.pos, builder.type_ids)

    def example_input(self, batch_size: int = 2) -> np.ndarray:
        """Oscillations plus noise on the montage, 16 code steps long."""
        rng = np.random.default_rng(0)
        t = np.arange(16 * self.time_stride) / 100.0
        freqs = rng.uniform(2.0, 30.0, size=(batch_size, self.n_channels, 1))
        x = np.sin(2 * np.pi * freqs * t) + 0.2 * rng.standard_normal(
            (batch_size, self.n_channels, t.size)
        )
        return x.astype(np.float32)
