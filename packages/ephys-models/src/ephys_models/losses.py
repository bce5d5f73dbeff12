"""Training objectives: token cross-entropy and mean squared error.

torch is imported at module level: ephys imports this module only when a loss is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch.nn import functional as F

from ephys_core.components import Component
from ephys_models.configs.losses import CrossEntropyConfig, MSEConfig
from ephys_tokenizers import mulaw

__all__ = ["MSE", "CrossEntropy"]


def _primary_output(outputs: Any) -> torch.Tensor:
    """The prediction tensor of a model output: itself, ``[0]`` of a tuple, or ``"logits"``."""
    if isinstance(outputs, Mapping):
        return _primary_output(
            outputs["logits"] if "logits" in outputs else next(iter(outputs.values()))
        )
    if isinstance(outputs, tuple | list):
        return _primary_output(outputs[0])
    return outputs


def _split_targets(targets: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(y, mask)`` from a tensor or a ``{"y": ..., "mask": (B, C) bool}`` mapping."""
    if isinstance(targets, Mapping):
        if "y" not in targets:
            raise ValueError(f"mapping targets need a 'y' entry; got {sorted(targets)}")
        return targets["y"], targets.get("mask")
    return targets, None


def _weights(
    mask: torch.Tensor | None, shape: torch.Size, device: torch.device
) -> torch.Tensor | None:
    """Per-element weights of shape ``shape`` from a ``(B, C)`` presence mask (``None``: all)."""
    if mask is None:
        return None
    if tuple(mask.shape) != tuple(shape[: mask.ndim]):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not match targets of shape {tuple(shape)}"
        )
    mask = mask.to(device=device, dtype=torch.float32)
    return mask.reshape(*mask.shape, *([1] * (len(shape) - mask.ndim))).expand(shape)


def _masked_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean over the weighted elements (0 when every channel is masked out)."""
    if weights is None:
        return values.mean()
    picked = torch.where(weights > 0, values * weights, torch.zeros_like(values))
    return picked.sum() / weights.sum().clamp_min(1.0)


class CrossEntropy(Component):
    """Token cross-entropy over logits ``(..., V)``, with label smoothing and channel masks.

    ``outputs`` are logits ``(B, C, T, V)`` (or a tuple/mapping whose first entry or ``"logits"``
    is). ``targets`` are int64 ids ``(B, C, T)``, soft targets ``(B, C, T, V)`` (probabilities,
    e.g. from mixup), or ``{"y": ids or soft targets, "mask": (B, C) bool}``, which restricts
    the loss and metrics to present channels. Any leading shape works as long as the logits add
    one vocabulary axis.

    Metrics: ``accuracy`` (argmax equals the target id; for soft targets the most probable
    id) and ``mse``, the squared error between the mu-law-decoded argmax and the decoded
    target (mu = V - 1), in normalised amplitude units ([-1, 1]); for soft targets the target
    amplitude is the probability-weighted mean of the decoded codes.
    """

    Config: ClassVar[type[CrossEntropyConfig]] = CrossEntropyConfig
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "mse")

    def __init__(self, config: CrossEntropyConfig | None = None) -> None:
        self.config = config or self.Config()

    def __call__(self, outputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        logits = _primary_output(outputs)
        y, mask = _split_targets(targets)
        vocab = logits.shape[-1]
        soft = y.dtype.is_floating_point
        expected = tuple(logits.shape) if soft else tuple(logits.shape[:-1])
        if tuple(y.shape) != expected:
            kind = "soft targets" if soft else "target ids"
            raise ValueError(
                f"{kind} of shape {tuple(y.shape)} do not match logits of shape "
                f"{tuple(logits.shape)} (expected {expected})"
            )
        flat_logits = logits.reshape(-1, vocab)
        flat_y = y.reshape(-1, vocab) if soft else y.reshape(-1).long()
        per_item = F.cross_entropy(
            flat_logits,
            flat_y.to(flat_logits.dtype) if soft else flat_y,
            reduction="none",
            label_smoothing=self.config.label_smoothing,
        ).reshape(expected if not soft else expected[:-1])
        weights = _weights(mask, per_item.shape, logits.device)
        loss = _masked_mean(per_item.float(), weights)
        with torch.no_grad():
            predicted = logits.argmax(dim=-1)
            mu = vocab - 1
            if soft:
                codes = torch.arange(vocab, device=logits.device)
                target_ids = y.argmax(dim=-1)
                target_amp = (y.float() * mulaw.decode(codes, mu)).sum(-1) / y.float().sum(
                    -1
                ).clamp_min(1e-12)
            else:
                target_ids = y
                target_amp = mulaw.decode(y, mu)
            accuracy = _masked_mean((predicted == target_ids).float(), weights)
            mse = _masked_mean((mulaw.decode(predicted, mu) - target_amp).square(), weights)
        return {"loss": loss, "accuracy": accuracy, "mse": mse}

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, Any]:
        logits = torch.randn(batch_size, 3, 8, 16, requires_grad=True)
        y = torch.randint(0, 16, (batch_size, 3, 8))
        mask = torch.ones(batch_size, 3, dtype=torch.bool)
        mask[:, -1] = False
        return logits, {"y": y, "mask": mask}


class MSE(Component):
    """Mean squared error between continuous predictions and targets, e.g. ``(B, C, T)``.

    ``outputs`` is the prediction (or a tuple/mapping whose first entry or ``"logits"`` is);
    ``targets`` a tensor of the same shape or ``{"y": tensor, "mask": (B, C) bool}``, which
    restricts the loss to present channels. Metric: ``mae``, the mean absolute error.
    """

    Config: ClassVar[type[MSEConfig]] = MSEConfig
    metrics: ClassVar[tuple[str, ...]] = ("mae",)

    def __init__(self, config: MSEConfig | None = None) -> None:
        self.config = config or self.Config()

    def __call__(self, outputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        prediction = _primary_output(outputs)
        y, mask = _split_targets(targets)
        if tuple(y.shape) != tuple(prediction.shape):
            raise ValueError(
                f"targets of shape {tuple(y.shape)} do not match outputs of shape "
                f"{tuple(prediction.shape)}"
            )
        error = prediction.float() - y.float()
        weights = _weights(mask, error.shape, error.device)
        loss = _masked_mean(error.square(), weights)
        with torch.no_grad():
            mae = _masked_mean(error.abs(), weights)
        return {"loss": loss, "mae": mae}

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = torch.randn(batch_size, 3, 16, requires_grad=True)
        return outputs, torch.randn(batch_size, 3, 16)
