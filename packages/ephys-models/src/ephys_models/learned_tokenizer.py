"""What every learned tokenizer shares: a trained model as the tokenizer's state, encoding in
overlapping blocks with the codes of one pass, and the numpy/torch in-out convention.

A subclass says how to build its model from its configuration (``_build_model``), how to
encode one block of a ``(B, C, T)`` signal into ``(B, rows, T / stride)`` codes
(``_encode_block``), how to decode such codes (``_decode``) and how far back in samples a
code step reads (``receptive_field``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from ephys_core.components import Component

__all__ = ["LearnedTokenizer", "time_receptive_field"]

_WEIGHTS = "weights/"


def time_receptive_field(encoder: torch.nn.Module) -> int:
    """Input samples one output step of a causal convolutional ``encoder`` reads (its own
    stride and the history): the convolutions in forward order, time their first kernel axis."""
    field, jump = 1, 1
    for module in encoder.modules():
        if isinstance(module, torch.nn.modules.conv._ConvNd) and not module.transposed:
            field += (module.kernel_size[0] - 1) * module.dilation[0] * jump
            jump *= module.stride[0]
    return field


class LearnedTokenizer(Component):
    """Base of the tokenizers that are trained models (see the module documentation).

    ``encode``: ``(..., C, T)`` -> int64 codes ``(..., rows, T // time_stride)`` (samples past
    the last whole code step are dropped); ``decode``: codes -> float32 ``(..., C, T' *
    time_stride)``. numpy in, numpy out; torch in, torch out.
    """

    causal: ClassVar[bool] = True
    samplewise: ClassVar[bool] = False
    requires_fit: ClassVar[bool] = False  # trained with `ephys train`, then exported
    #: a learned tokenizer promises no accuracy of its own: its card measures it
    roundtrip_tolerance: ClassVar[float | None] = None

    def __init__(self, config: Any = None) -> None:
        self.config = config or self.example_config()
        self.model = self._build_model().eval()

    # -- what a subclass provides -----------------------------------------------------------
    def _build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def _encode_block(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` float32 -> ``(B, rows, T / time_stride)`` int64."""
        raise NotImplementedError

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``(B, rows, T')`` int64 -> ``(B, C, T' * time_stride)``."""
        raise NotImplementedError

    @property
    def receptive_field(self) -> int:
        """Input samples one code step reads (its own ``time_stride`` and the history)."""
        raise NotImplementedError

    @property
    def code_rows(self) -> int:
        raise NotImplementedError

    @property
    def time_stride(self) -> int:  # type: ignore[override]
        return int(self.model.time_stride)

    @property
    def vocab_size(self) -> int:
        return int(self.model.vocab_size)

    @property
    def code_levels(self) -> int:
        """Residual-quantiser levels of the code rows (``levels * n_latents`` rows, level by
        level); 1 for a single quantiser."""
        return int(getattr(self.model, "levels", 1))

    @property
    def ch_names(self) -> list[str]:
        """The montage's channels, in the order :meth:`encode` takes them."""
        return list(self.config.ch_names)

    @property
    def n_channels(self) -> int:
        return len(self.config.ch_names)

    # -- codec ------------------------------------------------------------------------------
    def _batch(self, x: Any) -> tuple[torch.Tensor, tuple[int, ...], bool]:
        as_torch = isinstance(x, torch.Tensor)
        tensor = (
            x.detach().float().cpu()
            if as_torch
            else torch.from_numpy(
                np.array(x, dtype=np.float32)
            )  # a copy: memory maps are read-only
        )
        if tensor.ndim < 2 or tensor.shape[-2] != self.n_channels:
            raise ValueError(
                f"this tokenizer encodes its montage of {self.n_channels} channels; got an "
                f"array of shape {tuple(tensor.shape)}"
            )
        return tensor.reshape(-1, *tensor.shape[-2:]), tuple(tensor.shape[:-2]), as_torch

    def encode(self, signal: Any) -> Any:
        """Signal -> codes, in blocks of ``block_steps`` code steps that overlap by the
        receptive field (so the codes are those of one pass)."""
        x, lead, as_torch = self._batch(signal)
        if not torch.isfinite(x).all():
            raise ValueError("the signal holds NaN or infinite samples; it cannot be encoded")
        stride = self.time_stride
        steps = x.shape[-1] // stride
        x = x[..., : steps * stride]
        overlap = -(-(self.receptive_field - stride) // stride)  # whole code steps of history
        block = int(self.config.block_steps)
        parts = []
        with torch.no_grad():
            for first in range(0, steps, block):
                last = min(first + block, steps)
                start = max(0, first - overlap)
                codes = self._encode_block(x[..., start * stride : last * stride])
                parts.append(codes[..., first - start :])
        if parts:
            codes = torch.cat(parts, dim=-1)
        else:
            codes = torch.zeros((x.shape[0], self.code_rows, 0), dtype=torch.int64)
        codes = codes.reshape(*lead, self.code_rows, steps)
        return codes if as_torch else codes.numpy()

    def decode(self, codes: Any) -> Any:
        """Codes ``(..., rows, T')`` -> float32 ``(..., C, T' * time_stride)``."""
        as_torch = isinstance(codes, torch.Tensor)
        k = (
            codes.detach().cpu().long()
            if as_torch
            else torch.from_numpy(np.array(codes, dtype=np.int64))
        )
        if k.ndim < 2 or k.shape[-2] != self.code_rows:
            raise ValueError(
                f"this tokenizer's codes have {self.code_rows} rows; got shape {tuple(k.shape)}"
            )
        if k.numel() and (int(k.min()) < 0 or int(k.max()) >= self.vocab_size):
            raise ValueError(f"codes must lie in [0, {self.vocab_size})")
        lead = tuple(k.shape[:-2])
        with torch.no_grad():
            signal = self._decode(k.reshape(-1, *k.shape[-2:]))
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

    def _take_weights(self, model: torch.nn.Module) -> None:
        self.model.load_state_dict(model.state_dict())
        self.model.eval()

    def example_input(self, batch_size: int = 2) -> np.ndarray:
        """Oscillations plus noise on the montage, 16 code steps long."""
        rng = np.random.default_rng(0)
        t = np.arange(16 * self.time_stride) / 100.0
        freqs = rng.uniform(2.0, 30.0, size=(batch_size, self.n_channels, 1))
        noise = rng.standard_normal((batch_size, self.n_channels, t.size))
        return (np.sin(2 * np.pi * freqs * t) + 0.2 * noise).astype(np.float32)
