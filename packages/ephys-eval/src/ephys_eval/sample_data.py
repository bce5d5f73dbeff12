"""The data the quickstart and the forecasting benchmark prepare: simulated (or the user's) MEG,
through the real preprocessing pipeline, with a channel subset a CPU can train on.

Simulated MEG is drawn from OSL-ephys's multivariate autoregressive model of a real 306-channel
MEGIN recording (:func:`ephys_data.simulate.simulate_meg`), one recording per subject; it is a
linear Gaussian process, which matters when judging models on it: the best forecaster of such
data is linear, so a classical VAR is close to optimal and deep models can at best match it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ephys_core.errors import EphysError
from ephys_core.logging import get_logger

__all__ = [
    "MAX_CHANNELS",
    "channel_choice",
    "cosine_optim",
    "cpu_trainer",
    "prepare",
    "preprocessing_stages",
    "simulate_subjects",
    "token_run_config",
]

logger = get_logger(__name__)

#: channels trained on: posterior magnetometers of the simulation, thinned evenly
MAX_CHANNELS = 16


def preprocessing_stages(simulated: bool) -> list[dict[str, Any]]:
    """Read, band-pass 1-30 Hz, resample to 100 Hz, zero bad channels, normalise, clip 5 SD."""
    picks = ["mag"] if simulated else ["meg", "eeg"]
    return [
        {"name": "read", "params": {"picks": picks}},
        {"name": "bandpass", "params": {"l_freq": 1.0, "h_freq": 30.0}},
        {"name": "resample", "params": {"sfreq": 100.0}},
        {"name": "bad_channels", "params": {"action": "zero"}},
        {"name": "normalize", "params": {"method": "robust"}},
        {"name": "clip", "params": {"k": 5.0}},
    ]


def simulate_subjects(raw_dir: Path, subjects: int, seconds: float, seed: int) -> Path:
    """``sub-XX_task-rest_meg.fif`` files of simulated MEG (kept if already there)."""
    from ephys_data.simulate import simulate_meg

    for s in range(1, subjects + 1):
        path = raw_dir / f"sub-{s:02d}_task-rest_meg.fif"
        if not path.is_file():
            simulate_meg(path, seconds, seed=seed + s)
    return raw_dir


def prepare(source_root: Path, prepared: Path, simulated: bool) -> dict[str, Any]:
    """Preprocess every recording under ``source_root`` into ``prepared``; returns the
    manifest. Raises when no recording could be prepared."""
    from ephys_data.pipeline import preprocess

    logger.info("preprocessing %s into %s", source_root, prepared)
    summary = preprocess(
        {"name": "folder", "params": {"root": str(source_root)}},
        preprocessing_stages(simulated),
        prepared,
    )
    if not summary.manifest["totals"]["sessions"]:
        failures = "; ".join(f"{f['name']}: {f['error']}" for f in summary.manifest["failures"])
        raise EphysError(f"no recording could be preprocessed: {failures}")
    return summary.manifest


def channel_choice(prepared: Path, simulated: bool) -> list[str] | None:
    """A channel subset small enough to train on a CPU in minutes.

    Simulated data: posterior magnetometers (over the visual cortex, where the alpha rhythm
    is); other data: all channels. Either is thinned evenly to :data:`MAX_CHANNELS`.
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


def cpu_trainer(steps: int, checks: int = 4) -> dict[str, Any]:
    """The trainer section of a CPU run of ``steps`` steps: validation (20 batches) and a
    checkpoint ``checks`` times."""
    every = max(steps // checks, 1)
    return {
        "max_steps": steps,
        "val_check_interval": every,
        "check_val_every_n_epoch": None,
        "limit_val_batches": 20,
        "log_every_n_steps": max(1, min(25, steps // 10)),
        "accelerator": "cpu",
        "devices": 1,
        "checkpoint": {"every_n_steps": every},
    }


def cosine_optim(lr: float, warmup_steps: int, steps: int) -> dict[str, Any]:
    """AdamW at ``lr``, warming up for ``warmup_steps`` (at most a fifth of ``steps``), then a
    cosine decay to a tenth of ``lr``."""
    return {
        "lr": lr,
        "warmup_steps": min(warmup_steps, steps // 5),
        "scheduler": {"name": "cosine", "min_lr_ratio": 0.1},
    }


def token_run_config(
    *,
    name: str,
    model: str,
    model_params: dict[str, Any],
    prepared: Path,
    channels: Any,
    out: Path,
    split: dict[str, Any],
    steps: int,
    batch_size: int,
    lr: float,
    warmup_steps: int,
    evaluation_split: str,
    evaluation: dict[str, Any],
    checks: int = 4,
    dataset: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run configuration that trains a token forecaster on 1 s mu-law windows of
    ``prepared`` on the CPU and evaluates it with ``token_forecast``.

    Validation and a checkpoint come ``checks`` times during training (20 batches each);
    AdamW warms up for ``warmup_steps`` (at most a fifth of ``steps``) and decays on a cosine
    to a tenth of ``lr``. ``dataset`` adds or overrides ``mulaw_next_step`` parameters.
    """
    return {
        "name": name,
        "seed": 0,
        "out_dir": str(out / "runs"),
        "data": {
            "dataset": {
                "name": "mulaw_next_step",
                "params": {
                    "roots": [str(prepared)],
                    "window_seconds": 1.0,
                    "channels": channels,
                    "amplitude": 5.0,
                    "mu": 255,
                    "split": split,
                    **(dataset or {}),
                },
            },
            "batch_size": batch_size,
            "drop_last": False,  # short recordings may not fill many batches
        },
        "model": {"name": model, "params": dict(model_params)},
        "loss": {"name": "cross_entropy"},
        "trainer": cpu_trainer(steps, checks),
        "optim": cosine_optim(lr, warmup_steps, steps),
        "evaluation": {
            "split": evaluation_split,
            "evaluators": [{"name": "token_forecast", "params": dict(evaluation)}],
        },
    }
