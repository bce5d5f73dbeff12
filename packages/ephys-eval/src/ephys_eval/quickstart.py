"""``ephys quickstart``: the whole path, from raw MEG to an evaluated model, in one call.

1. Data: simulated 306-channel MEG (OSL-ephys's model of real MEGIN data), one recording per
   simulated subject, or the user's own recording(s) with ``--input``.
2. Preprocessing with the real ephys-data pipeline: read, band-pass 1-30 Hz, resample to
   100 Hz, zero bad channels, robust normalisation, clipping at 5 SD.
3. Training a small ``gpt2meg`` on mu-law tokens (``mulaw_next_step``) on the CPU, on up to
   16 channels (posterior magnetometers of the simulation) so it finishes in minutes.
4. Evaluation with ``token_forecast``: validation cross-entropy beside the naive baselines,
   rollouts with PSD, covariance and divergence plots, ``summary.json`` and ``report.md``.

Everything lands in one folder, including ``quickstart.yaml``, the run configuration used, so
``ephys train``/``ephys eval`` can repeat or extend the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ephys_core.errors import EphysError
from ephys_core.logging import get_logger
from ephys_core.reporting import SummaryTable

__all__ = ["QuickstartResult", "quickstart", "quickstart_config"]

logger = get_logger(__name__)

SIMULATED_SUBJECTS = 6
MAX_CHANNELS = 16


@dataclass
class QuickstartResult:
    """What the quickstart produced."""

    out_dir: Path
    summary: dict[str, Any]
    report: Path
    beats_baselines: bool
    verdict: str
    tables: list[SummaryTable]


def _stages(simulated: bool) -> list[dict[str, Any]]:
    picks = ["mag"] if simulated else ["meg", "eeg"]
    return [
        {"name": "read", "params": {"picks": picks}},
        {"name": "bandpass", "params": {"l_freq": 1.0, "h_freq": 30.0}},
        {"name": "resample", "params": {"sfreq": 100.0}},
        {"name": "bad_channels", "params": {"action": "zero"}},
        {"name": "normalize", "params": {"method": "robust"}},
        {"name": "clip", "params": {"k": 5.0}},
    ]


def _channel_choice(prepared: Path, simulated: bool) -> Any:
    """A channel subset small enough to train on a CPU in minutes.

    Simulated data: posterior magnetometers (over the visual cortex, where the alpha rhythm
    is); other data: all channels. Either is thinned evenly to ``MAX_CHANNELS``.
    """
    from ephys_data.format import PreparedDataset

    meta = PreparedDataset(prepared).sessions()[0].meta
    names = list(meta["ch_names"])
    if simulated and meta.get("pos_2d") is not None:
        names = [n for n, (_, y) in zip(names, meta["pos_2d"], strict=True) if y <= 1 / 3]
    if len(names) <= MAX_CHANNELS:
        return None if len(names) == len(meta["ch_names"]) else names
    step = len(names) / MAX_CHANNELS
    return [names[int(i * step)] for i in range(MAX_CHANNELS)]


def quickstart_config(
    out: Path, prepared: Path, channels: Any, n_sessions: int, steps: int
) -> dict[str, Any]:
    """The run configuration of the quickstart (also written to ``quickstart.yaml``)."""
    split = (
        {"strategy": "subject", "val": 0.2, "test": 0.2}
        if n_sessions >= 3
        else {"strategy": "time", "val": 0.2, "test": 0.2}
    )
    return {
        "name": "gpt2meg-quickstart",
        "seed": 0,
        "out_dir": str(out / "runs"),
        "data": {
            "dataset": {
                "name": "mulaw_next_step",
                "params": {
                    "roots": [str(prepared)],
                    "window_seconds": 1.0,
                    "overlap_seconds": 0.5,
                    "channels": channels,
                    "amplitude": 5.0,
                    "split": split,
                },
            },
            "batch_size": 8,
            "drop_last": False,  # short recordings may not fill many batches
        },
        "model": {
            "name": "gpt2meg",
            "params": {
                "d_model": 64,
                "n_layers": 2,
                "n_heads": 4,
                "context_length": 128,
                "dropout": 0.0,
            },
        },
        "loss": {"name": "cross_entropy"},
        "trainer": {
            "max_steps": steps,
            "val_check_interval": max(steps // 3, 1),
            "check_val_every_n_epoch": None,
            "limit_val_batches": 20,
            "log_every_n_steps": 25,
            "accelerator": "cpu",
            "devices": 1,
            "checkpoint": {"every_n_steps": max(steps // 3, 1)},
        },
        "optim": {
            "lr": 2e-3,
            "weight_decay": 0.01,
            "warmup_steps": min(30, steps // 5),
            "scheduler": {"name": "cosine", "min_lr_ratio": 0.1},
        },
        "evaluation": {
            "split": "val",
            "evaluators": [
                {
                    "name": "token_forecast",
                    "params": {"max_batches": 20, "n_contexts": 8, "horizon_seconds": 2.0},
                }
            ],
        },
    }


def quickstart(
    out: str | Path,
    *,
    input_path: str | Path | None = None,
    minutes: float = 6.0,
    steps: int = 200,
    seed: int = 0,
) -> QuickstartResult:
    """Run the quickstart into ``out``; see the module documentation."""
    from ephys_core.config import load_config
    from ephys_data.pipeline import preprocess
    from ephys_data.simulate import simulate_meg
    from ephys_eval.runner import evaluate
    from ephys_models.training import train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    simulated = input_path is None
    if simulated:
        raw_dir = out / "raw"
        seconds = minutes * 60 / SIMULATED_SUBJECTS
        for s in range(1, SIMULATED_SUBJECTS + 1):
            path = raw_dir / f"sub-{s:02d}_task-rest_meg.fif"
            if not path.is_file():
                simulate_meg(path, seconds, seed=seed + s)
        source_root: Path = raw_dir
    else:
        source_root = Path(input_path)  # type: ignore[arg-type]
    prepared = out / "prepared"
    logger.info("preprocessing %s into %s", source_root, prepared)
    summary = preprocess(
        {"name": "folder", "params": {"root": str(source_root)}}, _stages(simulated), prepared
    )
    if not summary.manifest["totals"]["sessions"]:
        failures = "; ".join(f"{f['name']}: {f['error']}" for f in summary.manifest["failures"])
        raise EphysError(f"no recording could be preprocessed: {failures}")
    config_data = quickstart_config(
        out,
        prepared,
        _channel_choice(prepared, simulated),
        summary.manifest["totals"]["sessions"],
        steps,
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
