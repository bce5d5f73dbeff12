"""Everything ``ephys train`` checks before it does any work, and what it will do.

:func:`plan_training` turns a loaded run configuration into a :class:`TrainingPlan`, or fails
with one :class:`~ephys_core.errors.ConfigError` listing every problem with its key:

1. the components' parameters (without importing torch: ephys's models and losses are declared
   through :class:`~ephys_core.components.LazyComponent`);
2. the run folder: resuming needs a readable ``last.ckpt``; starting over needs ``--overwrite``,
   which replaces only an ephys run folder that holds neither the working directory nor the
   run's own data;
3. the metrics that checkpointing and early stopping monitor, against those the loss declares;
4. the data: with ``data.tokenizer``, the tokenizer is exported (once per checkpoint) and the
   signals encoded (once: later runs reuse the codes) after every check above has passed
   (:mod:`ephys_models.training.tokenizer_data`), and the run reads the codes; the dataset is
   opened (memory-mapped, cheap), the model's data-derived parameters are filled from its
   ``data_spec()`` and the model and loss check that they can consume it (a context shorter
   than the window, a token model on continuous data, ...);
5. the hardware the trainer section asks for, the optimiser and scheduler names;
6. when resuming, that the configuration and the data still match the checkpoint.

Only then does :func:`ephys_models.training.train` touch the run folder. This module imports
neither torch nor Lightning at import time; steps 5 and 6, and reading the checkpoint that
``data.tokenizer`` names, import torch when they need it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ephys_core.config import RunConfig
from ephys_core.errors import ConfigError, EphysError
from ephys_core.logging import get_logger
from ephys_core.plugins import get_registry
from ephys_models.training.binding import bind_params
from ephys_models.training.compat import data_spec_problems, resume_problems
from ephys_models.training.run_folder import RunFolder, is_launched_child
from ephys_models.training.tokenizer_data import TokenizerCodes, tokenizer_codes, tokenizer_problems

__all__ = ["TrainingPlan", "build_dataset", "monitorable_metrics", "plan_training"]

logger = get_logger(__name__)


@dataclass
class TrainingPlan:
    """A checked training run, ready to execute.

    Attributes
    ----------
    config
        The resolved run configuration, with the model's data-derived parameters bound.
    builder
        The dataset component.
    data_spec
        Its ``data_spec()``.
    folder
        The run folder.
    resume
        Continue from ``folder.last_checkpoint``.
    replace
        Replace the existing run folder first (``--overwrite``).
    owner
        Whether this process may change the run folder (``False`` in the processes Lightning
        starts for the other ranks of a distributed run).
    warnings
        Things the user should know that do not stop the run.
    codes
        With ``data.tokenizer``: the tokenizer, the code dataset the run reads and what
        encoding did.
    """

    config: RunConfig
    builder: Any
    data_spec: dict[str, Any]
    folder: RunFolder
    resume: bool = False
    replace: bool = False
    owner: bool = True
    warnings: list[str] = field(default_factory=list)
    codes: TokenizerCodes | None = None

    @property
    def run_data(self) -> dict[str, Any]:
        """The configuration as stored in ``config.yaml`` and in every checkpoint."""
        return self.config.to_data()


def build_dataset(config: RunConfig) -> Any:
    """The dataset component of a resolved configuration; its errors name their full path."""
    assert config.data is not None
    try:
        return get_registry("datasets").create(
            config.component_name("data.dataset"), config.params("data.dataset")
        )
    except ConfigError as err:
        raise ConfigError(
            [p if p.startswith("data.") else f"data.dataset.params.{p}" for p in err.problems],
            source=err.source,
        ) from None
    except EphysError as err:  # the data cannot be opened (missing, corrupt, ...)
        raise ConfigError(f"data.dataset: {err}", source=config._source) from err


def monitorable_metrics(loss: str, has_val: bool = True) -> list[str]:
    """The metric names a run logs for checkpoints and early stopping to monitor.

    ``train/loss``, ``train/loss_step``, ``train/loss_epoch`` and ``train/<metric>``, and the
    same under ``val/`` when there is a validation split, for ``loss`` and every metric the
    loss declares (read from its declaration, without importing it).
    """
    metrics = ["loss", *get_registry("losses").metadata(loss, "metrics", ())]
    names = [f"train/{m}" for m in metrics] + ["train/loss_step", "train/loss_epoch"]
    if has_val:
        names += [f"val/{m}" for m in metrics]
    return names


def _monitor_problems(config: RunConfig, has_val: bool | None) -> list[str]:
    """Monitored metrics the run will not log. ``has_val`` is ``None`` before the data is open.

    Without a validation split no best checkpoint is kept (so its monitor does not matter),
    but early stopping on a ``val/`` metric cannot work.
    """
    assert config.loss is not None
    trainer = config.trainer
    watched = []
    if has_val is not False:
        watched.append(("trainer.checkpoint.monitor", trainer.checkpoint.monitor))
    if trainer.early_stopping is not None:
        watched.append(("trainer.early_stopping.monitor", trainer.early_stopping.monitor))
    known = monitorable_metrics(config.component_name("loss"), has_val is not False)
    problems = []
    for key, monitor in watched:
        if monitor in known:
            continue
        if has_val is False and monitor.startswith("val/"):
            problems.append(
                f"{key}: {monitor!r} needs a validation split, and the data has none "
                "(set data.dataset.params.split.val > 0, or monitor a train/ metric)"
            )
        else:
            problems.append(f"{key}: {monitor!r} is not logged; the run logs {', '.join(known)}")
    return problems


def _light_problems(config: RunConfig) -> list[str]:
    """Combinations of settings that cannot work, whatever the data."""
    trainer = config.trainer
    problems = []
    if config.tokenizer is not None:
        problems.append(
            "tokenizer: `ephys train` does not read this section (it is `ephys tokenizer "
            "fit`'s); to train on a tokenizer's codes, give its folder or its training run's "
            "checkpoint as data.tokenizer (mulaw_next_step tokenizes signals itself)"
        )
    if trainer.swa is not None and isinstance(trainer.swa.epoch_start, float):
        if trainer.max_epochs is None:
            problems.append(
                "trainer.swa.epoch_start: a fraction of training needs max_epochs; give the "
                "epoch to start at as an integer"
            )
    return problems


def _folder_problems(
    config: RunConfig, folder: RunFolder, *, resume: bool, overwrite: bool
) -> list[str]:
    if resume and overwrite:
        return ["--resume and --overwrite: choose one"]
    if resume:
        if not folder.last_checkpoint.is_file():
            return [f"--resume: {folder.last_checkpoint} does not exist; nothing to resume"]
        return []
    assert config.data is not None
    roots = config.params("data.dataset").model_dump().get("roots") or []
    if config.data.codes_dir is not None:
        roots = [*roots, config.data.codes_dir]
    if overwrite:
        return folder.overwrite_problems(roots)
    if folder.has_checkpoints():
        return [
            f"{folder.path} already holds checkpoints; continue it with --resume, replace it "
            "with --overwrite, or choose another run name (-o name=...)"
        ]
    if folder.path.is_dir() and any(folder.path.iterdir()) and not folder.is_run():
        return [
            f"{folder.path} exists and is not an ephys run folder; choose another run name "
            "(-o name=...) or out_dir"
        ]
    return []


def _data_problems(config: RunConfig, spec: dict[str, Any]) -> list[str]:
    """Bind the model's data-derived parameters; ask the model and the loss about the data."""
    assert config.data is not None
    problems = []
    models = get_registry("models")
    name = config.component_name("model")
    written = config.model.params if config.model is not None else {}
    bound = bind_params(models.config_model(name), written, spec)
    try:
        params = models.validate_params(name, bound, prefix="model.params")
    except ConfigError as err:
        return err.problems
    config.set_params("model", params)
    for path, component in (("model", params), ("loss", config.params("loss"))):
        check = getattr(component, "check_data", None)
        if check is not None:
            problems += [f"{path}: {problem}" for problem in check(spec)]
    windows = spec["splits"]["train"]["windows"]
    if windows == 0 or (config.data.drop_last and windows < config.data.batch_size):
        problems.append(
            f"data: the training split has {windows} window(s), not one full batch of "
            f"{config.data.batch_size}; use shorter windows, a smaller batch_size, more data, "
            "or data.drop_last: false"
        )
    return problems


def _torch_problems(config: RunConfig) -> list[str]:
    """Checks that need torch: the machine's devices, optimiser and scheduler names."""
    from ephys_models.training.hardware import hardware_problems
    from ephys_models.training.optim import optimizer_problems

    return hardware_problems(config.trainer) + optimizer_problems(config.optim)


def _resume_problems(plan: TrainingPlan) -> list[str]:
    """The checkpoint must be readable, and the configuration and the data still its own."""
    from ephys_models.training.checkpoint import CheckpointError, read_metadata

    try:
        meta = read_metadata(plan.folder.last_checkpoint)
    except CheckpointError as err:
        return [f"--resume: {err}"]
    problems = [
        f"--resume: the configuration changed: {p}"
        for p in resume_problems(meta["config"], plan.run_data)
    ]
    problems += [
        f"--resume: the data changed: {p}"
        for p in data_spec_problems(meta["data_spec"], plan.data_spec, same_data=True)
    ]
    return problems


RESUME_HINT = (
    "--resume continues a run exactly as it was configured: resume with its configuration "
    "(changing only length, hardware, checkpointing or logging) or start a new run "
    "(-o name=...)"
)


def _fail(problems: list[str], config: RunConfig, hint: str | None = None) -> None:
    if problems:
        raise ConfigError(problems, source=config._source, hint=hint)


def plan_training(
    config: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_encode: Callable[[str, Any], None] | None = None,
) -> TrainingPlan:
    """Check a run configuration completely and return what training will do.

    Parameters
    ----------
    config
        A loaded run configuration (:func:`ephys_core.config.load_config`).
    resume
        Continue the run from its ``last.ckpt``.
    overwrite
        Replace an existing run of the same name.
    on_encode
        Progress of the export and the encoding ``data.tokenizer`` asks for (see
        :func:`~ephys_models.training.tokenizer_data.tokenizer_codes`).

    Raises
    ------
    ConfigError
        Every problem found, each with the configuration key or option it concerns.
    """
    config.require("data", "model", "loss", command="train")
    config.resolve(["data", "model", "loss"])
    folder = RunFolder(config.out_dir, config.name)
    owner = not is_launched_child()
    problems = _light_problems(config) + _monitor_problems(config, None)
    problems += tokenizer_problems(config)
    if owner:
        problems += _folder_problems(config, folder, resume=resume, overwrite=overwrite)
    _fail(problems, config)
    config, codes = tokenizer_codes(config, encode=owner, on_event=on_encode)
    builder = build_dataset(config)
    spec = dict(builder.data_spec())
    has_val = spec["splits"]["val"]["windows"] > 0
    problems = _data_problems(config, spec)
    if not has_val:
        problems += _monitor_problems(config, has_val)
    _fail(problems, config)
    _fail(_torch_problems(config), config)
    plan = TrainingPlan(
        config,
        builder,
        spec,
        folder,
        resume=resume,
        replace=overwrite and folder.path.exists(),
        owner=owner,
        codes=codes,
    )
    if resume:
        _fail(_resume_problems(plan), config, RESUME_HINT)
    if spec.get("leaking_subjects"):
        plan.warnings.append(
            f"{len(spec['leaking_subjects'])} subject(s) appear in more than one split"
        )
    return plan
