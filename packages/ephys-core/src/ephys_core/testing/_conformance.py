"""The conformance suite: which checks apply to each kind, and how to run them."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path

from ephys_core.errors import ConformanceError
from ephys_core.testing._common import NotApplicable

__all__ = ["CHECKS", "check_component", "conformance_cases", "run_check"]

#: kind -> check name -> "module:function"; names are listed without importing anything.
CHECKS: dict[str, dict[str, str]] = {
    "models": {
        name: f"ephys_core.testing.models:check_{name}"
        for name in (
            "output_shape",
            "finite_outputs_and_gradients",
            "causal_perturbation",
            "causal_gradient",
            "state_dict_roundtrip",
            "deterministic_eval",
        )
    },
    "losses": {
        name: f"ephys_core.testing.losses:check_{name}"
        for name in ("finite_scalar", "declared_metrics", "gradient")
    },
    "tokenizers": {
        name: f"ephys_core.testing.tokenizers:check_{name}"
        for name in (
            "roundtrip",
            "vocabulary_range",
            "causality",
            "shapes",
            "determinism",
            "state_roundtrip",
        )
    },
    "preprocessing": {
        name: f"ephys_core.testing.preprocessing:check_{name}"
        for name in ("contract", "sfreq_bookkeeping")
    },
    "evaluators": {"declared_outputs": "ephys_core.testing.evaluators:check_declared_outputs"},
    "datasets": {
        name: f"ephys_core.testing.datasets:check_{name}"
        for name in ("splits", "stable_items", "data_spec")
    },
    "sources": {"discovers": "ephys_core.testing.datasets:check_discovers"},
}
for _checks in CHECKS.values():
    _checks["config_roundtrip"] = "ephys_core.testing._common:check_config_roundtrip"


def _function(target: str) -> Callable[[type, Path], None]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def run_check(kind: str, name: str, check: str, workdir: Path) -> str | None:
    """Run one check on one registered component.

    Returns
    -------
    str or None
        ``None`` if the check passed, otherwise the reason it does not apply.

    Raises
    ------
    ConformanceError
        The component violates the contract (and does not declare this as expected).
    """
    from ephys_core.plugins import get_registry

    component = get_registry(kind).load(name)
    expected = dict(getattr(component, "expected_failures", {}) or {})
    try:
        _function(CHECKS[kind][check])(component, workdir)
    except NotApplicable as reason:
        return str(reason)
    except ConformanceError as err:
        if check in expected:
            return f"expected failure: {expected[check]}"
        raise ConformanceError(f"{kind} {name!r} fails {check}: {err}") from err
    if check in expected:
        raise ConformanceError(
            f"{kind} {name!r} passes {check}, which it declares as an expected failure "
            f"({expected[check]}); remove the declaration"
        )
    return None


def check_component(
    kind: str, name: str, workdir: Path, checks: Iterable[str] | None = None
) -> None:
    """Run every (or the given) conformance check of ``kind`` on component ``name``."""
    for check in checks or CHECKS[kind]:
        run_check(kind, name, check, workdir)


def conformance_cases(
    kinds: Iterable[str] | None = None,
    *,
    distribution: str | None = None,
    names: Iterable[str] | None = None,
) -> list[tuple[str, str, str]]:
    """``(kind, name, check)`` for installed components, read from metadata only.

    Parameters
    ----------
    kinds
        Kinds to include (all by default).
    distribution
        Only components provided by this distribution (e.g. ``"ephys-plugin-example"``).
    names
        Only these component names.
    """
    from ephys_core._policy import normalize_distribution
    from ephys_core.plugins import get_registry

    wanted_dist = normalize_distribution(distribution) if distribution else None
    wanted_names = set(names) if names is not None else None
    cases: list[tuple[str, str, str]] = []
    for kind in kinds or CHECKS:
        for entry in get_registry(kind).entries():
            if wanted_dist and normalize_distribution(entry.distribution or "") != wanted_dist:
                continue
            if wanted_names is not None and entry.name not in wanted_names:
                continue
            cases.extend((kind, entry.name, check) for check in CHECKS[kind])
    return cases
