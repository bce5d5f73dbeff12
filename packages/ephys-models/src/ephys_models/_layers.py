"""Pieces shared by the token models: input parsing, side-information embeddings, init helpers.

Private to ephys-models; the public surface is the models themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["ContextEmbedding", "TokenBatch", "example_tokens", "gpt_init", "parse_tokens"]


@dataclass
class TokenBatch:
    """The parts of a token-model input that the models use.

    Attributes
    ----------
    x
        ``(B, C, T)`` int64 token ids.
    condition
        ``(B, T)`` int64 condition labels (0 = no condition), or ``None``.
    subject
        ``(B,)`` int64 subject indices, or ``None``.
    """

    x: torch.Tensor
    condition: torch.Tensor | None = None
    subject: torch.Tensor | None = None


def parse_tokens(inputs: Any, n_channels: int, model: str) -> TokenBatch:
    """Split a token-model input into ids, condition labels and subject indices, checking shapes.

    ``inputs`` is a ``(B, C, T)`` integer tensor or a mapping with ``"x"`` and optionally
    ``"condition"`` and ``"subject"``; other keys (``"pos"``, ``"mask"``, ...) are ignored.
    """
    if isinstance(inputs, Mapping):
        if "x" not in inputs:
            raise ValueError(f"{model}: a mapping input needs an 'x' entry; got {sorted(inputs)}")
        batch = TokenBatch(inputs["x"], inputs.get("condition"), inputs.get("subject"))
    elif isinstance(inputs, tuple | list):
        raise TypeError(
            f"{model}: pass side information as a mapping "
            "{'x': ids, 'condition': labels, 'subject': index}, not a tuple"
        )
    else:
        batch = TokenBatch(inputs)
    x = batch.x
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{model}: token ids must be a (B, C, T) tensor; got {got}")
    if x.dtype.is_floating_point or x.dtype == torch.bool:
        raise TypeError(f"{model}: token ids must be integers; got {x.dtype}")
    if x.shape[1] != n_channels:
        raise ValueError(
            f"{model}: built for n_channels={n_channels} but the input has {x.shape[1]} channels"
        )
    b, _, t = x.shape
    if batch.condition is not None and tuple(batch.condition.shape) != (b, t):
        raise ValueError(
            f"{model}: 'condition' must be (B, T) = {(b, t)}; got {tuple(batch.condition.shape)}"
        )
    if batch.subject is not None and tuple(batch.subject.shape) != (b,):
        raise ValueError(
            f"{model}: 'subject' must be (B,) = {(b,)}; got {tuple(batch.subject.shape)}"
        )
    batch.x = x.long()
    return batch


class ContextEmbedding(nn.Module):
    """Channel, condition and subject embeddings, summed into one additive term.

    Parameters
    ----------
    n_channels
        Channels; each gets a learned vector (omitted when ``channel=False``).
    n_conditions
        Condition classes. Labels lie in ``[0, n_conditions]``; label 0 means "no condition"
        and embeds to exactly zero. 0 disables condition embeddings.
    n_subjects
        Subjects, indexed ``[0, n_subjects)``; 0 disables subject embeddings.
    dim
        Embedding width.
    channel
        Whether to include the per-channel embedding.
    """

    def __init__(
        self, n_channels: int, n_conditions: int, n_subjects: int, dim: int, *, channel: bool = True
    ) -> None:
        super().__init__()
        self.n_conditions = n_conditions
        self.channel = nn.Embedding(n_channels, dim) if channel else None
        self.condition = (
            nn.Embedding(n_conditions + 1, dim, padding_idx=0) if n_conditions > 0 else None
        )
        self.subject = nn.Embedding(n_subjects, dim) if n_subjects > 0 else None

    def forward(self, batch: TokenBatch, model: str) -> torch.Tensor | None:
        """The summed embeddings, broadcastable to ``(B, C, T, dim)`` (``None`` if none)."""
        out = None
        if self.channel is not None:
            out = self.channel.weight[None, :, None, :]
        if batch.condition is not None:
            if self.condition is not None:
                term = self.condition(batch.condition.long())[:, None, :, :]
                out = term if out is None else out + term
            elif bool((batch.condition != 0).any()):
                raise ValueError(
                    f"{model}: the input has condition labels but the model was built with "
                    "n_conditions=0; set n_conditions to the number of condition classes"
                )
        if batch.subject is not None and self.subject is not None:
            term = self.subject(batch.subject.long())[:, None, None, :]
            out = term if out is None else out + term
        return out


def example_tokens(
    batch_size: int,
    n_channels: int,
    n_times: int,
    vocab_size: int,
    n_conditions: int = 0,
    n_subjects: int = 0,
) -> Any:
    """Random ids ``(B, C, T)``, in a mapping with condition/subject tracks when configured."""
    x = torch.randint(0, vocab_size, (batch_size, n_channels, n_times))
    if n_conditions <= 0 and n_subjects <= 0:
        return x
    inputs: dict[str, torch.Tensor] = {"x": x}
    if n_conditions > 0:
        inputs["condition"] = torch.randint(0, n_conditions + 1, (batch_size, n_times))
    if n_subjects > 0:
        inputs["subject"] = torch.randint(0, n_subjects, (batch_size,))
    return inputs


def gpt_init(module: nn.Module, std: float = 0.02) -> None:
    """GPT-2 style initialisation of linear and embedding weights (padding rows stay zero)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, 0.0, std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def hf_cache_argument(backbone: nn.Module) -> str:
    """The name a Hugging Face model's ``forward`` takes its key/value cache by: ``cache``
    (transformers 5.x, where ``past_key_values`` is deprecated) or ``past_key_values`` (4.x);
    the model output carries the cache under the same name."""
    import inspect

    parameters = inspect.signature(type(backbone).forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"
