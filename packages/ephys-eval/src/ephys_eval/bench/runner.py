"""Running the forecasting benchmark: data, training, evaluation, cost, leaderboard.

:func:`run_benchmark` prepares the protocol's data (or takes a prepared dataset), trains each
forecaster of the budget with ``ephys train``'s engine, evaluates it with ``token_forecast``
beside the classical baselines on the test split, measures what it cost (training time,
tokens/s, the fraction of this CPU's matrix-multiplication peak, generation throughput) and
writes the leaderboard (:mod:`ephys_eval.bench.leaderboard`).
"""

from __future__ import annotations

import csv
import hashlib
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger
from ephys_eval.bench.protocol import BUDGETS, PROTOCOL, SHARED, Budget, protocol_hash
from ephys_eval.bench.training import Progress, matmul_peak, train_once

__all__ = ["BenchResult", "data_hash", "matmul_peak", "run_benchmark"]

logger = get_logger(__name__)


@dataclass
class BenchResult:
    """What a benchmark run wrote."""

    out_dir: Path
    leaderboard: dict[str, Any]
    files: list[Path] = field(default_factory=list)


def data_hash(prepared: Path) -> dict[str, Any]:
    """A digest of a prepared dataset: every session's name and content hashes."""
    from ephys_data.format import PreparedDataset

    dataset = PreparedDataset(prepared)
    h = hashlib.sha256()
    for session in dataset.sessions():
        meta = session.meta
        h.update(f"{session.name}:{meta.get('data_sha256')}:{meta.get('meta_sha256')}".encode())
    totals = dataset.manifest["totals"]
    return {"hash": h.hexdigest()[:16], "sessions": totals["sessions"], "hours": totals["hours"]}


def _step_flops(module: Any, batch: Any) -> int:
    """Floating-point operations of one training step (forward and backward) on ``batch``."""
    from torch.utils.flop_counter import FlopCounterMode

    inputs, targets = batch
    with FlopCounterMode(display=False) as counter:
        result = module.loss_fn(module.model(inputs), targets)
        result["loss"].backward()
    module.model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def _run_config(budget: Budget, name: str, prepared: Path, channels: Any, out: Path) -> dict:
    from ephys_eval.sample_data import token_run_config

    b = budget
    config = token_run_config(
        name=f"bench-{b.name}-{name}",
        model=name,
        model_params=b.models[name],
        prepared=prepared,
        channels=channels,
        out=out,
        split=b.split,
        steps=b.steps_of(name),
        batch_size=b.batch_size,
        lr=b.lr,
        warmup_steps=b.warmup_steps,
        evaluation_split="test",
        evaluation=b.evaluation,
        dataset={
            "window_seconds": b.window_seconds,
            "amplitude": SHARED["dataset"]["amplitude"],
            "mu": SHARED["dataset"]["mu"],
        },
    )
    config["seed"] = SHARED["seed"]
    config["trainer"]["progress_bar"] = False
    return config


def _throughput(run_dir: Path) -> float | None:
    """Median training tokens/s logged by the performance monitor."""
    values = []
    for path in sorted(run_dir.glob("logs/version_*/metrics.csv")):
        with open(path, newline="") as handle:
            values += [
                float(r["perf/tokens_per_s"])
                for r in csv.DictReader(handle)
                if r.get("perf/tokens_per_s")
            ]
    return statistics.median(values) if values else None


def _train_and_evaluate(
    budget: Budget,
    name: str,
    prepared: Path,
    channels: Any,
    out: Path,
    peak: float,
    retrain: bool,
    say: Progress,
) -> dict[str, Any]:
    from ephys_core.config import load_config
    from ephys_eval.runner import evaluate
    from ephys_models.training import module_from_checkpoint

    raw = _run_config(budget, name, prepared, channels, out)
    record = train_once(raw, retrain, say, name)
    plan, run_dir = record["plan"], record["run_dir"]
    checkpoint = Path(record["checkpoint"])
    train_seconds = float(record["train_seconds"])
    peak = float(record.get("matmul_peak_gflops") or peak)
    say(f"evaluating {name}")
    evaluation = evaluate(checkpoint, load_config(raw), out / "reports" / name)
    module = module_from_checkpoint(checkpoint)
    spec = plan.data_spec
    tokens_per_step = budget.batch_size * spec["n_channels"] * spec["n_times"]
    batch = next(iter(_loader(plan)))
    flops = _step_flops(module, batch) * budget.batch_size / len(batch[1])
    tokens_per_s = _throughput(run_dir)
    achieved = flops * tokens_per_s / tokens_per_step / 1e9 if tokens_per_s else None
    return {
        "name": name,
        "params": sum(p.numel() for p in module.model.parameters()),
        "steps": record["steps"],
        "train_seconds": train_seconds,
        "tokens_seen": record["steps"] * tokens_per_step,
        "train_tokens_per_s": tokens_per_s,
        "gflops_per_s": achieved,
        "matmul_peak_fraction": achieved / peak if achieved else None,
        "matmul_peak_gflops": peak,
        "checkpoint": str(checkpoint),
        "report": str(evaluation.report),
        "evaluation": evaluation.summary["evaluators"]["token_forecast"],
    }


def _loader(plan: Any) -> Any:
    from torch.utils.data import DataLoader

    return DataLoader(plan.builder.build("train"), batch_size=plan.config.data.batch_size)


def run_benchmark(
    out: str | Path,
    *,
    budget: str | Budget = "smoke",
    models: Sequence[str] | None = None,
    data: str | Path | None = None,
    retrain: bool = False,
    progress: Progress | None = None,
    tokenizers: Sequence[str] | None = None,
) -> BenchResult:
    """Run the protocol's budget and write the leaderboard into ``out``.

    Parameters
    ----------
    out
        Folder for the data, the runs, one report per model and the leaderboard.
    budget
        ``smoke`` or ``standard`` (see :mod:`ephys_eval.bench.protocol`), or a
        :class:`~ephys_eval.bench.protocol.Budget` of one's own (its leaderboard then carries
        its own protocol hash).
    models
        Registered forecasters to run (default: every model the budget configures).
    data
        A prepared dataset to run on instead of the protocol's simulated data (its leaderboard
        then carries that dataset's hash; scores compare only with runs on the same data).
    retrain
        Train every model again. By default a model whose run in ``out`` finished with exactly
        the configuration the budget gives now (recorded in the run's ``bench-training.json``)
        is not retrained: it is evaluated again, and its training cost is the recorded one. So
        an interrupted benchmark resumes at the model it stopped in, and a change to the
        evaluation re-scores the models without training them.
    progress
        Called with a line before each long step.
    tokenizers
        Tokenizer rows to run (default: every tokenizer the budget configures; an empty list
        runs none). Each trains the budget's code forecaster on that tokenizer's codes and
        scores it in signal space (:mod:`ephys_eval.bench.tokenizer_rows`).
    """
    from ephys_eval.bench.leaderboard import leaderboard_rows, tokenizer_rows, write_leaderboard
    from ephys_eval.bench.tokenizer_rows import tokenizer_entries
    from ephys_eval.sample_data import channel_choice, prepare, simulate_subjects

    if isinstance(budget, str) and budget not in BUDGETS:
        raise ConfigError(f"--budget: unknown budget {budget!r}; use {', '.join(BUDGETS)}")
    spec = BUDGETS[budget] if isinstance(budget, str) else budget
    names = list(models or spec.models)
    unknown = [n for n in names if n not in spec.models]
    if unknown:
        raise ConfigError(
            f"--models: the {spec.name} budget configures {', '.join(spec.models)}, not "
            f"{', '.join(unknown)}"
        )
    keys = list(spec.tokenizers if tokenizers is None else tokenizers)
    unknown = [k for k in keys if k not in spec.tokenizers]
    if unknown:
        known = ", ".join(spec.tokenizers) or "none"
        raise ConfigError(
            f"--tokenizers: the {spec.name} budget configures {known}, not {', '.join(unknown)}"
        )
    say = progress or (lambda line: logger.info("%s", line))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        say(f"simulating {spec.subjects} subjects x {spec.seconds:.0f} s of MEG")
        raw = simulate_subjects(
            out / "raw" / spec.name, spec.subjects, spec.seconds, SHARED["seed"]
        )
        prepared = out / "prepared" / spec.name
        prepare(raw, prepared, simulated=True)
        channels, source = channel_choice(prepared, simulated=True), "simulated"
    else:
        prepared = Path(data)
        channels, source = channel_choice(prepared, simulated=False), str(prepared)
    peak = matmul_peak()
    entries = []
    for name in names:
        entries.append(_train_and_evaluate(spec, name, prepared, channels, out, peak, retrain, say))
    coded = [
        entry
        for key in keys
        for entry in tokenizer_entries(spec, key, prepared, channels, out, retrain, say)
    ]
    board = {
        "protocol": PROTOCOL,
        "protocol_hash": protocol_hash(spec),
        "budget": spec.to_dict(),
        "shared": SHARED,
        "data": {"source": source, "channels": channels, **data_hash(prepared)},
        "machine": _machine(peak),
        "rows": leaderboard_rows(entries),
        "models": {e["name"]: {k: v for k, v in e.items() if k != "evaluation"} for e in entries},
        "tokenizer_rows": tokenizer_rows(coded),
    }
    files = write_leaderboard(out, board)
    return BenchResult(out, board, files)


def _machine(peak: float) -> dict[str, Any]:
    import os

    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "matmul_peak_gflops_float32": peak,
    }
