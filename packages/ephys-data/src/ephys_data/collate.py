"""Mixup (Zhang et al., 2018) of training batches, as a DataLoader ``collate_fn``.

With probability ``prob`` a batch is blended with a shuffled copy of itself using a weight
``lam ~ Beta(alpha, alpha)`` (folded to ``lam >= 0.5`` so each example keeps its identity).
Only the primary floating input is mixed (positions, sensor types, labels are left alone);
floating targets are blended the same way and integer class targets become blended one-hot
vectors over ``num_classes``. With ``quantize``, inputs and targets are signals that are mixed
first and quantised afterwards (mu-law datasets), so mixing happens in signal space.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["mixup_collate"]


def _mix(value: Any, lam: float, perm: Any) -> Any:
    return value * lam + value[perm] * (1 - lam)


def _mix_primary(inputs: Any, lam: float, perm: Any) -> Any:
    if isinstance(inputs, dict):
        first = next(iter(inputs))
        return {**inputs, first: _mix_primary(inputs[first], lam, perm)}
    if isinstance(inputs, tuple | list):
        return type(inputs)([_mix_primary(inputs[0], lam, perm), *inputs[1:]])
    if not inputs.is_floating_point():
        raise TypeError("mixup needs floating inputs")
    return _mix(inputs, lam, perm)


def _mix_targets(targets: Any, lam: float, perm: Any, num_classes: int | None) -> Any:
    import torch

    if isinstance(targets, dict):
        first = next(iter(targets))
        return {**targets, first: _mix_targets(targets[first], lam, perm, num_classes)}
    if targets.is_floating_point():
        return _mix(targets, lam, perm)
    if num_classes is None:
        raise TypeError("mixup of integer targets needs num_classes")
    one_hot = torch.nn.functional.one_hot(targets, num_classes).float()
    return _mix(one_hot, lam, perm)


def mixup_collate(
    alpha: float,
    prob: float = 1.0,
    num_classes: int | None = None,
    quantize: Callable[[Any], Any] | None = None,
    seed: int | None = None,
) -> Callable[[Sequence[Any]], Any]:
    """A collate function applying mixup to ``(inputs, targets)`` items.

    Parameters
    ----------
    alpha
        Beta distribution parameter.
    prob
        Probability that a batch is mixed.
    num_classes
        Number of classes of integer targets (one-hot before blending).
    quantize
        Applied to the primary input and the targets after mixing (e.g. mu-law encoding).
    seed
        Seed of the mixing generator (per process).
    """
    import torch
    from torch.utils.data import default_collate

    state: dict[str, torch.Generator] = {}

    def collate(items: Sequence[Any]) -> Any:
        inputs, targets = default_collate(items)
        if "gen" not in state:
            gen = torch.Generator()
            gen.manual_seed(seed if seed is not None else torch.initial_seed())
            state["gen"] = gen
        gen = state["gen"]
        mixed = float(torch.rand((), generator=gen)) < prob
        if mixed:
            beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
            lam = float(beta.sample())
            lam = max(lam, 1 - lam)
            perm = torch.randperm(len(items), generator=gen)
            inputs = _mix_primary(inputs, lam, perm)
            targets = _mix_targets(targets, lam, perm, num_classes)
        if quantize is not None:
            if isinstance(inputs, dict):
                first = next(iter(inputs))
                inputs = {**inputs, first: quantize(inputs[first])}
            else:
                inputs = quantize(inputs)
            targets = quantize(targets)
        return inputs, targets

    return collate
