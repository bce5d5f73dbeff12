"""K-step free-running training for token models (a form of scheduled sampling).

The model sees the real context up to ``T - K`` and then runs ``K`` steps on its own output,
feeding back its chosen tokens (no gradient flows through the choice). The loss compares the
logits of those ``K`` steps with the true next tokens, teaching the model to recover from its
own errors as it must during generation.
"""

from __future__ import annotations

from typing import Any

import torch

from ephys_core.config import FreeRunningSection
from ephys_core.errors import ConfigError

__all__ = ["free_running_step"]


def _with_x(inputs: Any, x: torch.Tensor) -> Any:
    if isinstance(inputs, dict):
        out = dict(inputs)
        out["x"] = x
        if "condition" in inputs:
            out["condition"] = inputs["condition"][..., : x.shape[-1]]
        return out
    return x


def _slice_targets(targets: Any, start: int, stop: int, soft: bool) -> Any:
    if isinstance(targets, dict):
        return {**targets, "y": _slice_targets(targets["y"], start, stop, soft)}
    return targets[..., start:stop, :] if soft else targets[..., start:stop]


def free_running_step(
    model: torch.nn.Module, inputs: Any, targets: Any, config: FreeRunningSection
) -> tuple[torch.Tensor, Any]:
    """Logits ``(B, C, K, V)`` of ``K`` self-fed steps and the matching targets."""
    x = inputs["x"] if isinstance(inputs, dict) else inputs
    if x.is_floating_point() or getattr(model, "output_time_axis", -2) != -2:
        raise ConfigError(
            "trainer.free_running: only token models (ids in, logits out) can train free-running"
        )
    n_times, k = x.shape[-1], config.k_steps
    if k >= n_times:
        raise ConfigError(
            f"trainer.free_running.k_steps: {k} must be shorter than the window ({n_times} steps)"
        )
    current = x[..., : n_times - k]
    steps = []
    for _ in range(k):
        logits = model(_with_x(inputs, current))
        last = (logits[0] if isinstance(logits, tuple | list) else logits)[..., -1, :]
        steps.append(last)
        with torch.no_grad():
            if config.sampling == "argmax":
                token = last.argmax(dim=-1)
            else:
                token = torch.multinomial(last.float().softmax(-1).flatten(0, -2), 1).view(
                    last.shape[:-1]
                )
        current = torch.cat([current, token.unsqueeze(-1)], dim=-1)
    outputs = torch.stack(steps, dim=-2)
    first = targets["y"] if isinstance(targets, dict) else targets
    soft = first.is_floating_point()
    return outputs, _slice_targets(targets, n_times - k - 1, n_times - 1, soft)
