"""Conformance checks for ``ephys.losses`` components (need torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ephys_core.testing._common import build, ensure, primary

__all__ = ["check_declared_metrics", "check_finite_scalar", "check_gradient"]


def _run(component: type) -> tuple[Any, Any, Any]:
    loss = build(component)
    outputs, targets = loss.example_inputs(batch_size=2)
    return loss, outputs, loss(outputs, targets)


def check_finite_scalar(component: type, workdir: Path) -> None:
    """``loss(outputs, targets)["loss"]`` is a finite scalar tensor."""
    import torch

    _, _, result = _run(component)
    ensure("loss" in result, f"result has no 'loss' key (keys: {sorted(result)})")
    value = result["loss"]
    ensure(isinstance(value, torch.Tensor) and value.ndim == 0, "loss is not a scalar tensor")
    ensure(bool(torch.isfinite(value)), f"loss is not finite: {value}")


def check_declared_metrics(component: type, workdir: Path) -> None:
    """Exactly ``"loss"`` and the declared ``metrics`` are returned, each a finite scalar."""
    import torch

    _, _, result = _run(component)
    expected = {"loss", *component.metrics}
    ensure(
        set(result) == expected, f"returned keys {sorted(result)} != declared {sorted(expected)}"
    )
    for key, value in result.items():
        value = torch.as_tensor(value)
        ensure(value.ndim == 0 and bool(torch.isfinite(value)), f"metric {key!r} = {value}")


def check_gradient(component: type, workdir: Path) -> None:
    """The loss back-propagates finite, non-zero gradients into the model outputs."""
    import torch

    _, outputs, result = _run(component)
    out = primary(outputs)
    ensure(out.requires_grad, "example_inputs() must return outputs that require grad")
    (grad,) = torch.autograd.grad(result["loss"], out)
    ensure(bool(torch.isfinite(grad).all()), "non-finite gradient of the loss")
    ensure(bool(grad.abs().sum() > 0), "the loss does not depend on the outputs")
