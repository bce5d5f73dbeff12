"""Optimiser and learning-rate schedule from the ``optim`` section.

Parameters whose name contains one of ``optim.no_decay`` (biases, norms, embeddings by
default) and every 1-D parameter get no weight decay. The schedule starts with
``warmup_steps`` of linear warm-up from zero, then follows ``optim.scheduler``: ``cosine``
(to ``min_lr_ratio`` of the peak over the remaining steps), ``constant``, or any class of
``torch.optim.lr_scheduler`` by name with its keyword arguments.
"""

from __future__ import annotations

import inspect
import math
from difflib import get_close_matches
from typing import Any

import torch

from ephys_core.config import OptimSection
from ephys_core.errors import ConfigError

__all__ = ["build_optimizer", "build_scheduler", "optimizer_problems", "parameter_groups"]


def parameter_groups(model: torch.nn.Module, optim: OptimSection) -> list[dict[str, Any]]:
    """Two groups: with weight decay, and without (biases, norms, embeddings, 1-D)."""
    patterns = [p.lower() for p in optim.no_decay]
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim < 2 or any(p in name.lower() for p in patterns):
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [{"params": decay, "weight_decay": optim.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def _optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    cls = getattr(torch.optim, name, None)
    if inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer):
        return cls
    names = [
        n
        for n, v in vars(torch.optim).items()
        if inspect.isclass(v) and issubclass(v, torch.optim.Optimizer)
    ]
    close = get_close_matches(name, names, n=3)
    raise ConfigError(
        f"optim.name: {name!r} is not a torch.optim optimiser"
        + (f"; did you mean {', '.join(close)}?" if close else "")
    )


def _scheduler_class(name: str) -> type:
    cls = getattr(torch.optim.lr_scheduler, name, None)
    if inspect.isclass(cls):
        return cls
    names = [
        n
        for n, v in vars(torch.optim.lr_scheduler).items()
        if inspect.isclass(v) and n[0].isupper()
    ]
    close = get_close_matches(name, names, n=3)
    raise ConfigError(
        f"optim.scheduler.name: {name!r} is not a torch scheduler, `cosine` or `constant`"
        + (f"; did you mean {', '.join(close)}?" if close else "")
    )


def optimizer_problems(optim: OptimSection) -> list[str]:
    """What is wrong with the ``optim`` section, found without building anything.

    The optimiser and scheduler must exist, the scheduler's parameters must be among its
    keyword arguments, and warm-up needs a per-step schedule.
    """
    problems = []
    for check in (
        lambda: _optimizer_class(optim.name),
        lambda: _scheduler_problems(optim),
    ):
        try:
            check()
        except ConfigError as err:
            problems.extend(err.problems)
    return problems


def _scheduler_problems(optim: OptimSection) -> None:
    sched = optim.scheduler
    if sched is None or sched.name in ("cosine", "constant"):
        return
    cls = _scheduler_class(sched.name)
    accepted = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(sched.params) - set(accepted) - {"optimizer"})
        if unknown:
            raise ConfigError(
                f"optim.scheduler.params: {sched.name} has no parameter(s) {', '.join(unknown)}"
            )
    if optim.warmup_steps and sched.interval != "step":
        raise ConfigError("optim.warmup_steps: warm-up needs optim.scheduler.interval: step")


def build_optimizer(model: torch.nn.Module, optim: OptimSection) -> torch.optim.Optimizer:
    """The configured ``torch.optim`` optimiser over :func:`parameter_groups`."""
    cls = _optimizer_class(optim.name)
    accepted = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {"lr": optim.lr}
    if "betas" in accepted:
        kwargs["betas"] = tuple(optim.betas)
    if "eps" in accepted:
        kwargs["eps"] = optim.eps
    return cls(parameter_groups(model, optim), **kwargs)


def build_scheduler(
    optimizer: torch.optim.Optimizer, optim: OptimSection, total_steps: int
) -> dict[str, Any] | None:
    """A Lightning ``lr_scheduler`` config for warm-up plus the chosen schedule, or ``None``."""
    warmup = optim.warmup_steps
    sched = optim.scheduler
    if sched is None and warmup == 0:
        return None
    name = sched.name if sched is not None else "constant"
    if name in ("cosine", "constant"):
        floor = sched.min_lr_ratio if sched is not None else 1.0
        span = max(total_steps - warmup, 1)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if name == "constant":
                return 1.0
            progress = min((step - warmup) / span, 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        return {
            "scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor),
            "interval": "step",
            "frequency": 1,
        }
    assert sched is not None
    _scheduler_problems(optim)
    cls = _scheduler_class(name)
    try:
        main = cls(optimizer, **sched.params)
    except TypeError as err:
        raise ConfigError(f"optim.scheduler.params: {err}") from None
    if warmup:
        ramp = torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup
        )
        main = torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])
    config: dict[str, Any] = {"scheduler": main, "interval": sched.interval, "frequency": 1}
    if name == "ReduceLROnPlateau":
        config["monitor"] = "val/loss"
    return config
