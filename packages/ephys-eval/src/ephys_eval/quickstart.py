"""``ephys quickstart``: the whole path, from raw MEG to an evaluated model, in one call.

1. Data: simulated 306-channel MEG (OSL-ephys's model of real MEGIN data), one recording per
   simulated subject, or the user's own recording(s) with ``--input``.
2. Preprocessing with the real ephys-data pipeline: read, band-pass 1-30 Hz, resample to
   100 Hz, zero bad channels, robust normalisation, clipping at 5 SD.
3. Training a ``wavenet`` (amplitude-aware code embedding, discretised-Gaussian output head,
   refining a least-squares VAR highway) on mu-law tokens (``mulaw_next_step``) on the CPU,
   on up to 16 channels (posterior magnetometers of the simulation) so it finishes in
   minutes, validated every 100 steps; the checkpoint with the best validation loss is kept.
4. Evaluation of that checkpoint with ``token_forecast`` on the test split (data neither
   training nor the choice of checkpoint saw): cross-entropy beside the classical
   baselines (AR, VAR, persistence, token frequency) with bootstrap intervals, rollouts
   scored against the real-versus-real null, plots, ``summary.json`` and ``report.md``, and a
   verdict that says whether the model beats the best baseline.

Everything lands in one folder, including ``quickstart.yaml``, the run configuration used, so
``ephys train``/``ephys eval`` can repeat or extend the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ephys_core.logging import get_logger
from ephys_core.reporting import SummaryTable
from ephys_eval.bench.protocol import BUDGETS

__all__ = ["QuickstartResult", "quickstart", "quickstart_config"]

logger = get_logger(__name__)

SIMULATED_SUBJECTS = 20

#: steps between validations (and checkpoints): on the quickstart's twelve minutes of training
#: data the network over-fits within a few hundred steps, so the best checkpoint is chosen often
VALIDATE_EVERY = 100

#: the quickstart's forecaster: of ephys's three token models, the one that learns the most in
#: a few CPU minutes (docs/benchmarks.md), at the benchmark's standard size, with the mu-law-aware
#: layers on
MODEL = dict(BUDGETS["standard"].models["wavenet"])


@dataclass
class QuickstartResult:
    """What the quickstart produced."""

    out_dir: Path
    summary: dict[str, Any]
    report: Path
    beats_baselines: bool
    verdict: str
    tables: list[SummaryTable]


def quickstart_config(
    out: Path,
    prepared: Path,
    channels: Any,
    n_sessions: int,
    steps: int,
    baseline_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run configuration of the quickstart (also written to ``quickstart.yaml``);
    ``baseline_data`` sets the evaluator's ``fit_segments``/``fit_seconds``."""
    from ephys_eval.sample_data import token_run_config

    strategy = "subject" if n_sessions >= 3 else "time"
    return token_run_config(
        name="wavenet-quickstart",
        model="wavenet",
        model_params=MODEL,
        prepared=prepared,
        channels=channels,
        out=out,
        split={"strategy": strategy, "val": 0.2, "test": 0.2},
        steps=steps,
        batch_size=16,
        lr=2e-3,
        warmup_steps=30,
        evaluation_split="test",
        evaluation={
            "max_windows": 256,
            "n_contexts": 16,
            "horizon_seconds": 2.0,
            **(baseline_data or {}),
        },
        checks=max(3, steps // VALIDATE_EVERY),
        dataset={"overlap_seconds": 0.5},
    )


def quickstart(
    out: str | Path,
    *,
    input_path: str | Path | None = None,
    minutes: float = 60.0,
    steps: int = 1000,
    seed: int = 0,
) -> QuickstartResult:
    """Run the quickstart into ``out``; see the module documentation."""
    from ephys_core.config import load_config
    from ephys_eval.runner import evaluate
    from ephys_eval.sample_data import channel_choice, prepare, simulate_subjects
    from ephys_models.training import train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    simulated = input_path is None
    if simulated:
        seconds = minutes * 60 / SIMULATED_SUBJECTS
        source_root = simulate_subjects(out / "raw", SIMULATED_SUBJECTS, seconds, seed)
    else:
        source_root = Path(input_path)  # type: ignore[arg-type]
    prepared = out / "prepared"
    manifest = prepare(source_root, prepared, simulated)
    config_data = quickstart_config(
        out,
        prepared,
        channel_choice(prepared, simulated),
        manifest["totals"]["sessions"],
        steps,
        # simulated: the baselines are fitted on every training session in full (the 60 %
        # of the subjects the split trains on), the data the model's highway is fitted on
        {"fit_segments": SIMULATED_SUBJECTS * 3 // 5, "fit_seconds": seconds}
        if simulated
        else None,
    )
    config_path = out / "quickstart.yaml"
    config_path.write_text(yaml.safe_dump(config_data, sort_keys=False), encoding="utf-8")
    config = load_config(config_path)
    result = train(config, overwrite=True)
    checkpoint = result.best_checkpoint or result.last_checkpoint
    assert checkpoint is not None
    report_dir = out / "report"
    evaluation = evaluate(checkpoint, load_config(config_path), report_dir)
    from ephys_eval.token_forecast import TokenForecast

    result = evaluation.summary["evaluators"]["token_forecast"]
    beats, verdict = TokenForecast.verdict(result)
    assert evaluation.report is not None
    return QuickstartResult(
        out, evaluation.summary, evaluation.report, beats, verdict, evaluation.tables
    )
