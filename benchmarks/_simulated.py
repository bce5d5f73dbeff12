"""Simulated MEG datasets for the benchmarks, built once and cached in a work folder.

Recordings come from OSL-ephys's model of real 306-channel MEGIN data
(:func:`ephys_data.simulate.simulate_meg`) and go through the real ephys-data pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

from ephys_data.pipeline import preprocess
from ephys_data.simulate import simulate_meg

LOADING_STAGES = [
    {"name": "read"},
    {"name": "resample", "params": {"sfreq": 200.0}},
    {"name": "normalize"},
]


def simulated_raw(folder: Path, n: int, minutes: float) -> Path:
    """``n`` simulated recordings of ``minutes`` each in ``folder`` (reused if present)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = folder / f"sub-{i + 1:02d}_task-rest_meg.fif"
        if not path.is_file():
            simulate_meg(path, minutes * 60, seed=i)
    return folder


def prepared(workdir: Path, n: int, minutes: float, stages=LOADING_STAGES) -> Path:
    """A prepared dataset of ``n`` simulated sessions (cached by its parameters)."""
    key = f"{n}x{minutes:g}min"
    raw = simulated_raw(workdir / f"raw-{key}", n, minutes)
    out = workdir / f"prepared-{key}"
    stamp = out / "manifest.json"
    if not stamp.is_file() or json.loads(stamp.read_text())["totals"]["sessions"] != n:
        preprocess({"name": "folder", "params": {"root": str(raw)}}, stages, out)
    return out
