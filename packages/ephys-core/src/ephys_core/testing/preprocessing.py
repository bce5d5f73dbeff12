"""Conformance checks for ``ephys.preprocessing`` stages."""

from __future__ import annotations

import math
from pathlib import Path

from ephys_core.testing._common import build, ensure

__all__ = ["check_contract", "check_sfreq_bookkeeping"]


def check_contract(component: type, workdir: Path) -> None:
    """The stage returns a recording with consistent channels and leaves its input untouched."""
    stage = build(component, workdir)
    recording = stage.example_input(workdir)
    before = recording.fingerprint()
    out = stage(recording)
    ensure(recording.fingerprint() == before, "the stage modified its input recording")
    for attr in ("sfreq", "n_times", "ch_names", "fingerprint"):
        ensure(hasattr(out, attr), f"the output has no {attr!r}")
    ensure(out.n_times > 0, "the output has no samples")
    n_channels = getattr(out, "n_channels", len(out.ch_names))
    ensure(
        n_channels == len(out.ch_names),
        f"{n_channels} channels but {len(out.ch_names)} channel names",
    )


def check_sfreq_bookkeeping(component: type, workdir: Path) -> None:
    """Output sfreq is what ``output_sfreq`` promises; duration is kept if declared."""
    stage = build(component, workdir)
    recording = stage.example_input(workdir)
    out = stage(recording)
    promised = stage.output_sfreq(recording.sfreq)
    ensure(
        math.isclose(out.sfreq, promised, rel_tol=1e-9),
        f"output sfreq {out.sfreq} Hz != output_sfreq() {promised} Hz",
    )
    if getattr(stage, "preserves_duration", True):
        before, after = recording.n_times / recording.sfreq, out.n_times / out.sfreq
        slack = 1 / recording.sfreq + 1 / out.sfreq
        ensure(
            abs(before - after) <= slack,
            f"duration changed from {before:.4f} s to {after:.4f} s",
        )
