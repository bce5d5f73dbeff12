"""``ephys eval``: run a trained model's evaluators and write the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ephys_core.config import RunConfig
from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger
from ephys_core.plugins import get_hooks, get_registry
from ephys_core.protocols import EvaluationContext
from ephys_core.reporting import SummaryTable, section_of, tables_of
from ephys_eval.report import write_report

__all__ = ["DEFAULT_EVALUATOR", "Evaluation", "evaluate", "report_folder"]

logger = get_logger(__name__)
DEFAULT_EVALUATOR = "token_forecast"


@dataclass
class Evaluation:
    """What an evaluation produced.

    Attributes
    ----------
    summary
        The content of ``summary.json``: every evaluator's result under ``evaluators``.
    tables
        The summary tables every evaluator renders for the terminal.
    report
        ``report.md``.
    """

    summary: dict[str, Any]
    tables: list[SummaryTable] = field(default_factory=list)
    report: Path | None = None


def report_folder(checkpoint: str | Path, config: RunConfig, out_dir: str | Path | None) -> Path:
    """Where the report goes: ``out_dir``, else ``evaluation.out_dir``, else ``<run>/eval``.

    Raises
    ------
    ConfigError
        The checkpoint lies outside any run folder and no folder was named.
    """
    from ephys_models.training import RunFolder

    if out_dir is not None:
        return Path(out_dir)
    if config.evaluation.out_dir is not None:
        return Path(config.evaluation.out_dir)
    folder = RunFolder.of_checkpoint(checkpoint)
    if folder is None:
        raise ConfigError(
            f"{checkpoint} is not in a run folder (<run>/checkpoints/); say where the report "
            "goes with --out"
        )
    return folder.path / "eval"


def evaluate(
    checkpoint: str | Path,
    config: RunConfig | None = None,
    out_dir: str | Path | None = None,
) -> Evaluation:
    """Evaluate a checkpoint with the run's evaluators and write the report.

    Parameters
    ----------
    checkpoint
        A checkpoint from ``ephys train``.
    config
        A run configuration to use instead of the one stored in the checkpoint (its
        ``evaluation`` section chooses evaluators and split; its data must fit the model).
    out_dir
        Report folder (see :func:`report_folder`).
    """
    import torch

    from ephys_models.training import data_spec_problems, module_from_checkpoint

    module = module_from_checkpoint(checkpoint)
    run = config if config is not None else module.config
    run.require("data", command="eval")
    run.resolve(["data", "evaluation"])
    folder = report_folder(checkpoint, run, out_dir)
    builder = get_registry("datasets").create(
        run.component_name("data.dataset"), run.params("data.dataset")
    )
    spec = builder.data_spec()
    problems = data_spec_problems(module.data_spec, spec)
    if problems:
        raise ConfigError(
            [f"data: the checkpoint cannot be evaluated on it: {p}" for p in problems]
        )
    registry = get_registry("evaluators")
    evaluators = [(name, registry.create(name, params)) for name, params in _evaluators(run)]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    folder.mkdir(parents=True, exist_ok=True)
    context = EvaluationContext(
        model=module.model.eval().to(device),
        datasets={s: builder.build(s) for s in ("train", "val", "test")},
        out_dir=folder,
        device=device,
        loss=module.loss_fn,
        data_spec=spec,
        config=run,
        builder=builder,
    )
    results: dict[str, Any] = {}
    sections, tables = [], []
    for name, evaluator in evaluators:
        logger.info("running evaluator %s", name)
        result = evaluator.evaluate(context)
        results[name] = result
        sections.append(section_of(evaluator, name, result))
        tables += tables_of(evaluator, name, result)
    summary: dict[str, Any] = {
        "schema": "ephys-eval/1",
        "run": run.name,
        "model": run.component_name("model") if run.model is not None else None,
        "checkpoint": str(checkpoint),
        "evaluators": results,
    }
    plugin_sections = get_hooks().report_sections(summary, folder)
    report = write_report(folder, summary, sections, plugin_sections)
    return Evaluation(summary, tables, report)


def _evaluators(run: RunConfig) -> list[tuple[str, Any]]:
    """``(name, validated parameters)`` of the evaluators to run (the default one if none)."""
    paths = [f"evaluation.evaluators[{i}]" for i in range(len(run.evaluation.evaluators))]
    if paths:
        return [(run.component_name(p), run.params(p)) for p in paths]
    return [(DEFAULT_EVALUATOR, get_registry("evaluators").validate_params(DEFAULT_EVALUATOR))]
