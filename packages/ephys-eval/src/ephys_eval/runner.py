"""``ephys eval``: run a trained model's evaluators and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ephys_core.config import ComponentSpec, RunConfig
from ephys_core import get_hooks
from ephys_core.logging import get_logger
from ephys_core.protocols import EvaluationContext
from ephys_core import get_registry
from ephys_eval.report import write_report

__all__ = ["DEFAULT_EVALUATOR", "evaluate"]

logger = get_logger(__name__)
DEFAULT_EVALUATOR = "token_forecast"


def evaluate(
    checkpoint: str | Path, config: RunConfig | None = None, out_dir: str | Path | None = None
) -> dict[str, Any]:
    """Evaluate a checkpoint with the run's evaluators; returns the summary written.

    Parameters
    ----------
    checkpoint
        A checkpoint from ``ephys train``.
    config
        A run configuration to use instead of the one stored in the checkpoint (its
        ``evaluation`` section chooses evaluators and split).
    out_dir
        Report folder (default: ``evaluation.out_dir``, else ``<run>/eval``).
    """
    import torch

    from ephys_models.training import module_from_checkpoint
    from ephys_models.training.runner import build_dataset

    module = module_from_checkpoint(checkpoint)
    run = config if config is not None else RunConfig.model_validate(module.run_data)
    run.require("data", command="eval")
    run.resolve(["data", "evaluation"])
    assert run.data is not None
    builder = build_dataset(run.data.dataset.name, run.data.dataset.params)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    folder = Path(out_dir or run.evaluation.out_dir or run.run_dir / "eval")
    folder.mkdir(parents=True, exist_ok=True)
    context = EvaluationContext(
        model=module.model.eval().to(device),
        datasets={s: builder.build(s) for s in ("train", "val", "test")},
        out_dir=folder,
        device=device,
        loss=module.loss_fn,
        data_spec=builder.data_spec(),
        config=run,
        builder=builder,
    )
    specs = run.evaluation.evaluators or [ComponentSpec(name=DEFAULT_EVALUATOR)]
    results = {}
    for spec in specs:
        logger.info("running evaluator %s", spec.name)
        evaluator = get_registry("evaluators").create(spec.name, spec.params)
        results[spec.name] = evaluator.evaluate(context)
    assert run.model is not None
    summary: dict[str, Any] = {
        "schema": "ephys-eval/1",
        "run": run.name,
        "model": run.model.name,
        "checkpoint": str(checkpoint),
        "evaluators": results,
    }
    write_report(folder, summary, get_hooks().report_sections(summary, folder))
    return summary
