"""WaveNet: gated dilated causal convolutions over all channels of mu-law tokens.

torch is imported at module level: ephys imports this module only when the model is used.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ephys_core.logging import get_logger
from ephys_models._layers import ContextEmbedding
from ephys_models.codes import Prior
from ephys_models.configs.wavenet import WaveNetConfig
from ephys_models.token_model import TokenModel

__all__ = ["WaveNet"]

log = get_logger(__name__)


class _GatedLayer(nn.Module):
    """One WaveNet layer: dilated causal conv, tanh x sigmoid gate, residual and skip outputs.

    In generation, ``queue`` holds the last ``(kernel_size - 1) * dilation`` inputs of the
    layer, so a new step is computed from a fixed number of samples.
    """

    def __init__(
        self,
        residual: int,
        gate: int,
        skip: int,
        kernel_size: int,
        dilation: int,
        context_dim: int,
        dropout: float,
        last: bool,
    ) -> None:
        super().__init__()
        self.history = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(residual, 2 * gate, kernel_size, dilation=dilation)
        self.context = nn.Linear(context_dim, 2 * gate, bias=False) if context_dim else None
        self.drop = nn.Dropout(dropout)
        # the last layer's residual output would be unused: it has none
        self.residual = None if last else nn.Conv1d(gate, residual, 1)
        self.skip = nn.Conv1d(gate, skip, 1)

    def forward(
        self, h: torch.Tensor, context: torch.Tensor | None, queue: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        padded = F.pad(h, (self.history, 0)) if queue is None else torch.cat([queue, h], dim=-1)
        pre = self.conv(padded)  # (B, 2G, T)
        if context is not None and self.context is not None:
            pre = pre + self.context(context).transpose(1, 2)
        filt, gate = pre.chunk(2, dim=1)
        z = self.drop(torch.tanh(filt) * torch.sigmoid(gate))
        out = h if self.residual is None else (h + self.residual(z)) * math.sqrt(0.5)
        return out, self.skip(z), padded[..., padded.shape[-1] - self.history :]

    def step(
        self, h: torch.Tensor, context: torch.Tensor | None, queue: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One new time step ``h`` ``(B, R)``: the same computation as :meth:`forward` with
        matrix products on the kernel's taps (cheaper than convolutions for a single step)."""
        padded = torch.cat([queue, h.unsqueeze(-1)], dim=-1)  # (B, R, history + 1)
        taps = padded[..., :: self.conv.dilation[0]]  # (B, R, kernel_size)
        pre = F.linear(taps.flatten(1), self.conv.weight.flatten(1), self.conv.bias)
        if context is not None and self.context is not None:
            pre = pre + self.context(context)
        filt, gate = pre.chunk(2, dim=-1)
        z = self.drop(torch.tanh(filt) * torch.sigmoid(gate))
        out = h
        if self.residual is not None:
            residual = F.linear(z, self.residual.weight[..., 0], self.residual.bias)
            out = (h + residual) * math.sqrt(0.5)
        skip = F.linear(z, self.skip.weight[..., 0], self.skip.bias)
        return out, skip, padded[..., 1:]


class WaveNet(TokenModel):
    """A WaveNet forecasting the next mu-law token of every channel from all channels' past.

    Every channel has its own token-embedding table; the per-channel embeddings are
    concatenated and mixed by a 1x1 convolution, so the convolutions see all channels at once.
    A stack of dilated causal convolutions with tanh x sigmoid gates, residual and skip
    connections follows; the summed skips go through a two-layer 1x1 head to per-channel
    logits. Condition labels (0 = none, embedding zero) and subject indices, when configured,
    bias every gate.

    Input ``(B, C, T)`` int64 ids in ``[0, vocab_size)``, or ``{"x": ids, "condition": (B, T),
    "subject": (B,)}``; output logits ``(B, C, T, vocab_size)``, where output ``t`` predicts the
    token at ``t + 1`` and depends only on the last ``receptive_field`` inputs ``<= t``.
    Generation (:meth:`forecast`) keeps a queue of past activations per layer, so each step
    costs the same however long the rollout.
    """

    Config: ClassVar[type[WaveNetConfig]] = WaveNetConfig
    label: ClassVar[str] = "wavenet"
    example_steps: ClassVar[int] = 24

    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__(config)
        c, v, e = config.n_channels, config.vocab_size, config.embedding_dim
        # one table of C * V rows: row c * V + token is channel c's embedding of the token
        self.token = nn.Embedding(c * v, e)
        self.register_buffer("offsets", torch.arange(c)[:, None] * v, persistent=False)
        self.inp = nn.Conv1d(c * e, config.residual_channels, 1)
        has_context = config.n_conditions > 0 or config.n_subjects > 0
        self.context = (
            ContextEmbedding(
                c, config.n_conditions, config.n_subjects, config.context_dim, channel=False
            )
            if has_context
            else None
        )
        n = len(config.dilations)
        self.layers = nn.ModuleList(
            _GatedLayer(
                config.residual_channels,
                config.gate_channels,
                config.skip_channels,
                config.kernel_size,
                d,
                config.context_dim if has_context else 0,
                config.dropout,
                last=i == n - 1,
            )
            for i, d in enumerate(config.dilations)
        )
        # per channel: V logits, or the 3 K raw parameters of the mixture head
        self.per_channel = v if config.head == "softmax" else 3 * config.mixture_components
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(config.skip_channels, config.head_channels, 1),
            nn.ReLU(),
            nn.Conv1d(config.head_channels, c * self.per_channel, 1),
        )
        self.add_code_layers(None, embed_dim=e)
        if self.mixture is not None:
            self.mixture.init_(self.head[3], prior=self.highway is not None)
        elif self.highway is not None:  # start at the prior: the logits it adds to are ~0
            with torch.no_grad():
                self.head[3].weight.mul_(0.01)
                self.head[3].bias.zero_()
        log.debug(
            "wavenet: %d parameters, receptive field %d steps",
            sum(p.numel() for p in self.parameters()),
            self.receptive_field,
        )

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> WaveNetConfig:
        return cls.Config(
            n_channels=3,
            vocab_size=16,
            n_conditions=2,
            n_subjects=2,
            embedding_dim=4,
            residual_channels=8,
            gate_channels=8,
            skip_channels=8,
            head_channels=8,
            kernel_size=2,
            dilations=[1, 2, 4, 1, 2, 4],
            context_dim=4,
        )

    @property
    def receptive_field(self) -> int:
        """Input steps that each output depends on (including the current one)."""
        return self.config.receptive_field

    @property
    def max_context(self) -> int:  # type: ignore[override]
        """Generation window: ``generation_window``, by default twice the receptive field."""
        return self.config.generation_window or 2 * self.receptive_field

    def _slide(self) -> int:
        # keep a whole receptive field when the window slides, so the re-filled cache gives
        # exactly what an unbounded history would
        spare = self.max_context - self.receptive_field
        return spare if spare > 0 else super()._slide()

    def _context(self, batch: Any, b: int, t: int) -> torch.Tensor | None:
        """Condition + subject embeddings ``(B, T, context_dim)``, or ``None``."""
        if self.context is None:
            if batch.condition is not None and bool((batch.condition != 0).any()):
                raise ValueError(
                    "wavenet: the input has condition labels but the model was built with "
                    "n_conditions=0; set n_conditions to the number of condition classes"
                )
            return None
        context = self.context(batch, "wavenet")  # (B, 1, T or 1, E) or None
        return None if context is None else context[:, 0].expand(b, t, -1)

    def _run(
        self, inputs: Any, state: list[torch.Tensor] | None, cache: bool, prior: Prior | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The convolutional path over all new steps; ``state`` holds each layer's queue."""
        cfg = self.config
        queues = state
        batch = self.parse(inputs)
        b, c, t = batch.x.shape
        emb = self.embed_codes(self.token, batch.x, self.offsets)  # (B, C, T, E)
        h = self.inp(emb.permute(0, 1, 3, 2).reshape(b, c * cfg.embedding_dim, t))
        context = self._context(batch, b, t)
        skips = None
        new_queues = []
        for i, layer in enumerate(self.layers):
            h, skip, queue = layer(h, context, None if queues is None else queues[i])
            skips = skip if skips is None else skips + skip
            new_queues.append(queue)
        out = self.head(skips)  # (B, C * V, T) logits, or (B, C * 3K, T) mixture parameters
        out = out.reshape(b, c, self.per_channel, t).permute(0, 1, 3, 2)
        return self.head_logits(out, prior), new_queues

    # -- generation: one new step is cheaper as matrix products on the kernel's taps --------

    def _run_step(self, inputs: Any, state: Any, prior: Prior | None) -> tuple[torch.Tensor, Any]:
        batch = self.parse(inputs)
        if batch.x.shape[-1] != 1:  # several new steps: the convolutional path
            return super()._run_step(inputs, state, prior)
        b, c, _ = batch.x.shape
        emb = self.embed_codes(self.token, batch.x[..., 0], self.offsets[:, 0])  # (B, C, E)
        h = F.linear(emb.flatten(1), self.inp.weight[..., 0], self.inp.bias)  # (B, R)
        context = self._context(batch, b, 1)
        context = None if context is None else context[:, 0]
        skips = None
        queues = []
        for layer, queue in zip(self.layers, state, strict=True):
            h, skip, queue = layer.step(h, context, queue)
            skips = skip if skips is None else skips + skip
            queues.append(queue)
        hidden = F.linear(F.relu(skips), self.head[1].weight[..., 0], self.head[1].bias)
        out = F.linear(F.relu(hidden), self.head[3].weight[..., 0], self.head[3].bias)
        if prior is not None:
            prior = (prior[0][..., 0], prior[1][..., 0])
        logits = self.head_logits(out.reshape(b, c, self.per_channel), prior)
        return logits.unsqueeze(2), queues
