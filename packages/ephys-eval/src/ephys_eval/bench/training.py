"""Training the benchmark's runs once: a finished run with the same training configuration
is reused (its cost is the recorded one), so an interrupted benchmark resumes where it stopped
and a change to the evaluation re-scores without retraining.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["TRAINING_RECORD", "matmul_peak", "train_once"]

Progress = Callable[[str], None]


def matmul_peak(
    size: int = 1024, repeats: int = 6, dtype: str = "float32", trials: int = 5
) -> float:
    """GFLOP/s of large matrix products on this machine, measured now: the best of ``trials``
    timings of ``repeats`` products (a peak, so the fastest; on a shared CPU single timings
    vary by tens of percent)."""
    import torch

    kind = getattr(torch, dtype)
    a, b = torch.randn(size, size, dtype=kind), torch.randn(size, size, dtype=kind)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(max(1, trials)):
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best / 1e9


#: what a finished training run of the benchmark records, so a later run can reuse it
TRAINING_RECORD = "bench-training.json"


def _config_digest(config: dict[str, Any]) -> str:
    """A digest of what decides the training: the run configuration without its evaluation
    section (so a change to the evaluation re-scores a finished run instead of retraining)."""
    training = {k: v for k, v in config.items() if k != "evaluation"}
    return hashlib.sha256(json.dumps(training, sort_keys=True).encode()).hexdigest()[:16]


def _finished_training(run_dir: Path, digest: str) -> dict[str, Any] | None:
    """The record of a finished training run with this exact configuration, if there is one
    (and its checkpoint is still there)."""
    path = run_dir / TRAINING_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("config_digest") != digest or not Path(record.get("checkpoint", "")).is_file():
        return None
    return record


def train_once(raw: dict[str, Any], retrain: bool, say: Progress, label: str) -> dict[str, Any]:
    """Train the run ``raw`` unless a finished run of the same training configuration is in
    its folder (``--retrain`` trains again); returns the training record (checkpoint, seconds,
    steps, matmul peak) and, as ``"plan"``, the training plan."""
    from ephys_core.config import load_config
    from ephys_core.files import atomic_write_bytes
    from ephys_models.training import execute, plan_training

    digest = _config_digest(raw)
    run_dir = Path(raw["out_dir"]) / raw["name"]
    plan = plan_training(load_config(raw, hooks=False), overwrite=True)
    record = None if retrain else _finished_training(run_dir, digest)
    if record is None:
        say(f"training {label} ({raw['trainer']['max_steps']} steps)")
        peak = matmul_peak()  # beside the training, so that its tokens/s compare with it
        started = time.perf_counter()
        result = execute(plan)
        checkpoint = result.best_checkpoint or result.last_checkpoint
        assert checkpoint is not None
        record = {
            "config_digest": digest,
            "train_seconds": time.perf_counter() - started,
            "steps": result.global_step,
            "checkpoint": str(checkpoint),
            "matmul_peak_gflops": peak,
        }
        atomic_write_bytes(
            result.run_dir / TRAINING_RECORD, json.dumps(record, indent=1).encode("utf-8")
        )
    else:
        say(f"{label}: reusing the finished training run {run_dir} (--retrain trains again)")
    return {**record, "plan": plan, "run_dir": run_dir}
