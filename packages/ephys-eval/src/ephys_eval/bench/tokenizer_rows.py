"""The benchmark's tokenizer rows: one forecaster trained on each tokenizer's codes, scored
in signal space.

For each tokenizer of the budget, :func:`tokenizer_entries`

1. makes the tokenizer from the training split: a fixed one (mu-law, quantile) is fitted with
   ``ephys tokenizer fit``'s function; a learned one (brainomni, braintokmix, vidtok_fsq) is
   trained with ``ephys train``'s engine on the benchmark's channels and exported;
2. encodes the prepared data once (``ephys tokenizer encode``; resumable, keyed by the
   tokenizer's identity);
3. trains the budget's ``code_forecaster`` on the codes (``tokens_next_step``), with windows
   of ``window_steps`` code steps whatever the code rate, and each of the budget's
   ``code_models`` configured for that tokenizer (models made for such codes: RVQ levels,
   latent images);
4. evaluates it with ``decoded_forecast``: rollouts decoded through the tokenizer and
   compared with the source recordings in tesla, beside AR/VAR fitted on the sources.

Cross-entropies of different tokenizers are in different codes and do not compare; the
signal-space columns do. Training runs are reused as the model rows' are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ephys_core.errors import ConfigError
from ephys_eval.bench.protocol import SHARED, Budget
from ephys_eval.sample_data import cosine_optim, cpu_trainer

__all__ = ["code_forecasters", "tokenizer_entries"]


def _run(
    budget: Budget,
    name: str,
    dataset: str,
    dataset_params: dict[str, Any],
    model: dict[str, Any],
    loss: str,
    steps: int,
    out: Path,
) -> dict[str, Any]:
    """A benchmark run configuration on the CPU (:func:`~ephys_eval.sample_data.cpu_trainer`,
    :func:`~ephys_eval.sample_data.cosine_optim`), with the budget's batch, split and
    learning rate."""
    return {
        "name": f"bench-{budget.name}-{name}",
        "seed": SHARED["seed"],
        "out_dir": str(out / "runs"),
        "data": {
            "dataset": {"name": dataset, "params": {**dataset_params, "split": budget.split}},
            "batch_size": budget.batch_size,
            "drop_last": False,
        },
        "model": model,
        "loss": {"name": loss},
        "trainer": {**cpu_trainer(steps), "progress_bar": False},
        "optim": cosine_optim(budget.lr, budget.warmup_steps, steps),
    }


def _learned_run(
    budget: Budget, key: str, spec: dict[str, Any], prepared: Path, channels: Any, out: Path
) -> dict[str, Any]:
    """The run configuration that trains a learned tokenizer on the training split."""
    params = {
        "roots": [str(prepared)],
        "window_seconds": float(spec["window_seconds"]),
        "channels": channels,
        **spec.get("dataset_params", {}),
    }
    model = {"name": spec["name"], "params": dict(spec.get("model", {}))}
    return _run(
        budget,
        f"tokenizer-{key}",
        spec["dataset"],
        params,
        model,
        "tokenizer_reconstruction",
        int(spec["steps"]),
        out,
    )


def _make_tokenizer(
    budget: Budget,
    key: str,
    prepared: Path,
    channels: Any,
    out: Path,
    retrain: bool,
    say: Any,
) -> tuple[Any, dict[str, Any]]:
    """The tokenizer artifact of row ``key`` and what making it cost."""
    from ephys_data.encoding import fit_tokenizer
    from ephys_eval.bench.training import train_once
    from ephys_models.tokenizer_export import export_tokenizer

    spec = budget.tokenizers[key]
    folder = out / "tokenizers" / key
    if "model" not in spec:
        say(f"fitting the {key} tokenizer")
        artifact = fit_tokenizer(
            spec["name"], spec.get("params", {}), [prepared], folder, split=budget.split
        )
        return artifact, {"train_seconds": 0.0, "steps": 0}
    record = train_once(
        _learned_run(budget, key, spec, prepared, channels, out),
        retrain,
        say,
        f"the {key} tokenizer",
    )
    artifact = export_tokenizer(record["checkpoint"], folder)
    return artifact, {"train_seconds": float(record["train_seconds"]), "steps": record["steps"]}


def _forecaster_run(
    budget: Budget,
    run_name: str,
    forecaster: dict[str, Any],
    codes: Path,
    channels: Any,
    code_rate: float,
    out: Path,
) -> dict[str, Any]:
    """The run ``run_name`` that trains ``forecaster`` (``{"name", "params", "steps"}``) on
    the ``codes``, with the budget's code windows, and evaluates it decoded."""
    params = {
        "roots": [str(codes)],
        "window_seconds": int(budget.code_forecaster["window_steps"]) / code_rate,
        "channels": channels,
    }
    model = {"name": forecaster["name"], "params": dict(forecaster["params"])}
    run = _run(
        budget,
        run_name,
        "tokens_next_step",
        params,
        model,
        "cross_entropy",
        int(forecaster["steps"]),
        out,
    )
    run["evaluation"] = {
        "split": "test",
        "evaluators": [{"name": "decoded_forecast", "params": dict(budget.decoded_evaluation)}],
    }
    return run


def code_forecasters(budget: Budget, key: str) -> list[tuple[str, dict[str, Any]]]:
    """``(run name, forecaster)`` of each forecaster trained on tokenizer ``key``'s codes: the
    budget's code forecaster (run ``codes-<key>``, the name it had before code models), then
    the code models configured for that tokenizer (``codes-<key>-<model>``), each
    ``{"name", "params", "steps"}``."""
    named = [
        (
            f"codes-{key}-{name}",
            {"name": name, **{k: v for k, v in spec.items() if k != "tokenizer"}},
        )
        for name, spec in budget.code_models.items()
        if spec["tokenizer"] == key
    ]
    return [(f"codes-{key}", budget.code_forecaster), *named]


def tokenizer_entries(
    budget: Budget,
    key: str,
    prepared: Path,
    channels: Any,
    out: Path,
    retrain: bool,
    say: Any,
) -> list[dict[str, Any]]:
    """Make tokenizer ``key``, encode the data, train each of its code forecasters
    (:func:`code_forecasters`) and score them: one entry each."""
    from ephys_core.config import load_config
    from ephys_data.encoding import encode_dataset
    from ephys_data.format import PreparedDataset
    from ephys_eval.bench.training import train_once
    from ephys_eval.runner import evaluate

    if not budget.code_forecaster:
        raise ConfigError(f"the {budget.name} budget has tokenizers but no code_forecaster")
    artifact, made = _make_tokenizer(budget, key, prepared, channels, out, retrain, say)
    tokenizer = artifact.tokenizer
    codes = out / "codes" / f"{key}-{artifact.identity}"
    say(f"encoding the data with {key} ({artifact.identity})")
    encode_dataset(artifact, [prepared], codes)
    stride = int(getattr(tokenizer, "time_stride", 1))
    sfreq = float(PreparedDataset(prepared).sessions()[0].meta["sfreq"])
    # per-channel codes keep the benchmark's channels; a learned tokenizer's latent rows are
    # all its codes (it was trained on those channels)
    per_channel = bool(getattr(tokenizer, "samplewise", False))
    entries = []
    for run_name, forecaster in code_forecasters(budget, key):
        name = forecaster["name"]
        rows = channels if per_channel else None
        raw = _forecaster_run(budget, run_name, forecaster, codes, rows, sfreq / stride, out)
        record = train_once(raw, retrain, say, f"{name} on {key} codes")
        say(f"evaluating {name} on {key} codes")
        evaluation = evaluate(
            Path(record["checkpoint"]), load_config(raw), out / "reports" / run_name
        )
        spec = record["plan"].data_spec
        entries.append(
            {
                "tokenizer": key,
                "name": artifact.name,
                "identity": artifact.identity,
                "time_stride": stride,
                "code_rows": int(spec["n_channels"]),
                "vocab_size": int(spec["vocab_size"]),
                "tokenizer_train_seconds": made["train_seconds"],
                "tokenizer_steps": made["steps"],
                "forecaster": name,
                "forecaster_steps": record["steps"],
                "forecaster_train_seconds": float(record["train_seconds"]),
                "checkpoint": record["checkpoint"],
                "report": str(evaluation.report),
                "evaluation": evaluation.summary["evaluators"]["decoded_forecast"],
            }
        )
    return entries
