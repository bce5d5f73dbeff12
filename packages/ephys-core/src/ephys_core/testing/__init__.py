"""The conformance kit: fixtures and the shared suite every ephys component must pass.

A plugin package tests all of its components in one line::

    # tests/test_conformance.py
    from ephys_core.testing import conformance_tests

    test_conformance = conformance_tests(distribution="ephys-foo")

This parametrizes one test per (kind, component, check), with ids such as
``models/foo_net/causal_gradient``, from package metadata alone; components are imported when
their test runs. The checks per kind are listed in :data:`CHECKS`:

* models: output shape, finite outputs and gradients, causality by perturbing the future and by
  gradients (causal models), state_dict round trip, deterministic eval, config round trip;
* tokenizers: encode/decode round trip within the stated tolerance, vocabulary range, causality;
* preprocessing stages: input/output contract (input untouched), sfreq and duration bookkeeping;
* losses: finite scalar, exactly the declared metrics, gradient into the outputs;
* evaluators: declared outputs, JSON-ready results;
* datasets: non-empty splits with consistent items, stable validation items, data spec;
* sources: discovery of existing recordings with unique names.

A component that knowingly fails a check declares it next to itself::

    expected_failures = {"causal_gradient": "the output head mixes time steps by design"}

A component that cannot be checked here (an optional dependency is missing) raises
:class:`NotApplicable` from its ``example_input``/``example_config``; the check is skipped with
that reason.

The fixtures ``ephys_registry`` and ``fake_dist`` are provided by the pytest plugin
:mod:`ephys_core.testing.plugin`, active wherever ephys-core is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ephys_core.testing._common import NotApplicable
from ephys_core.testing._conformance import (
    CHECKS,
    check_component,
    conformance_cases,
    run_check,
)

__all__ = [
    "CHECKS",
    "NotApplicable",
    "check_component",
    "conformance_cases",
    "conformance_tests",
    "run_check",
]


def conformance_tests(
    kinds: str | Iterable[str] | None = None,
    *,
    distribution: str | None = None,
    names: Iterable[str] | None = None,
) -> Callable[..., Any]:
    """A parametrized pytest test running the conformance suite on installed components.

    Parameters
    ----------
    kinds
        A kind or kinds to cover (all by default).
    distribution
        Only components of this distribution.
    names
        Only components with these names.
    """
    import pytest

    if isinstance(kinds, str):
        kinds = [kinds]
    cases = conformance_cases(kinds, distribution=distribution, names=names)

    @pytest.mark.parametrize(
        ("kind", "name", "check"), cases, ids=["/".join(case) for case in cases]
    )
    def test_conformance(kind: str, name: str, check: str, tmp_path: Path) -> None:
        reason = run_check(kind, name, check, tmp_path)
        if reason is not None:
            if reason.startswith("expected failure"):
                pytest.xfail(reason)
            pytest.skip(reason)

    return test_conformance
