"""Conformance checks for ``ephys.evaluators`` components."""

from __future__ import annotations

import json
from pathlib import Path

from ephys_core.testing._common import build, ensure

__all__ = ["check_declared_outputs"]


def check_declared_outputs(component: type, workdir: Path) -> None:
    """``evaluate`` returns JSON-ready results containing every declared output key."""
    evaluator = build(component, workdir)
    context = component.example_context(workdir)
    result = evaluator.evaluate(context)
    missing = set(component.outputs) - set(result)
    ensure(not missing, f"declared outputs missing from the result: {sorted(missing)}")
    try:
        json.dumps(result)
    except (TypeError, ValueError) as err:
        ensure(False, f"result is not JSON-serialisable: {err}")
    ensure(Path(context.out_dir).is_dir(), "the evaluator did not create its output folder")
