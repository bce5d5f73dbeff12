"""The run configuration: one YAML file for preprocessing, data, model, training, evaluation.

A run configuration is a pydantic model of sections. Components are referenced only by registry
name, with parameters validated by that component's own ``Config`` model::

    name: demo
    data:
      dataset: {name: mulaw_next_step, params: {roots: [prepared/], window_seconds: 2.0}}
      batch_size: 16
    model: {name: gpt2meg, params: {n_layers: 4}}
    loss: {name: cross_entropy}
    trainer: {max_steps: 500, precision: bf16-mixed}
    optim: {lr: 3.0e-4, warmup_steps: 50, scheduler: {name: cosine}}

Validation happens in two phases. :func:`load_config` checks the structure (sections, types,
unknown keys) without importing any plugin. :meth:`RunConfig.resolve` then validates the
parameters of the components a command needs against their ``Config`` models, importing only
those components, so a broken unrelated plugin never gets in the way. Every error names its full
path, e.g. ``model.params.n_layers: Input should be a valid integer (got 'four')``.

Relative paths are interpreted from the current working directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ephys_core._overrides import apply_overrides
from ephys_core._validation import validate_model
from ephys_core.errors import ComponentSpecError, ConfigError, EphysError
from ephys_core.files import folder_name_problem

__all__ = [
    "CheckpointSection",
    "ComponentSpec",
    "DataSection",
    "EarlyStoppingSection",
    "EvaluationSection",
    "FreeRunningSection",
    "MixupSection",
    "OptimSection",
    "PreprocessSection",
    "RunConfig",
    "SWASection",
    "SchedulerSection",
    "Section",
    "TrainerSection",
    "load_config",
    "read_config_file",
]


class Section(BaseModel):
    """Base of every configuration section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ComponentSpec(Section):
    """A reference to a registered component and its parameters.

    In YAML either ``{name: gpt2meg, params: {n_layers: 4}}`` or just ``gpt2meg``.
    """

    name: str = Field(description="Registry name of the component.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters, validated by the component's Config."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class MixupSection(Section):
    """Mixup of training batches (Zhang et al., 2018): blends pairs of examples and targets."""

    alpha: float = Field(0.2, gt=0, description="Beta(alpha, alpha) parameter of the mix weight.")
    prob: float = Field(1.0, ge=0, le=1, description="Probability that a batch is mixed.")
    num_classes: int | None = Field(
        None, gt=1, description="Classes of integer targets (one-hot before mixing)."
    )


class DataSection(Section):
    """Which dataset to train on and how to load it."""

    dataset: ComponentSpec = Field(description="A component of kind `datasets`.")
    batch_size: int = Field(32, gt=0, description="Examples per batch and device.")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    pin_memory: bool | None = Field(None, description="Pin host memory (default: on GPU runs).")
    persistent_workers: bool = Field(True, description="Keep workers alive between epochs.")
    prefetch_factor: int | None = Field(None, gt=0, description="Batches prefetched per worker.")
    drop_last: bool = Field(True, description="Drop the last incomplete training batch.")
    mixup: MixupSection | None = Field(None, description="Mixup of training batches.")
    tokenizer: Path | None = Field(
        None,
        description="Train on this tokenizer's codes of the dataset's `roots` (prepared "
        "signals): a tokenizer folder (`ephys tokenizer export` or `fit`), or the checkpoint "
        "(`.ckpt`) of a run that trained a tokenizer model (brainomni, braintokmix, "
        "vidtok_fsq). `ephys train` exports a checkpoint once to "
        "`<out_dir>/tokenizers/<name>-<identity>`, encodes the roots once into `codes_dir`, "
        "and trains on the codes (a dataset that reads them, such as `tokens_next_step`).",
    )
    codes_dir: Path | None = Field(
        None,
        description="Where the codes of `tokenizer` are written (default: "
        "`<out_dir>/codes/<tokenizer name>-<first 12 characters of its identity>`); runs "
        "with the same tokenizer reuse them, encoding only sessions not encoded yet.",
    )

    @model_validator(mode="after")
    def _codes_need_a_tokenizer(self) -> DataSection:
        if self.codes_dir is not None and self.tokenizer is None:
            raise ValueError("codes_dir is where data.tokenizer's codes go; give data.tokenizer")
        return self


class SchedulerSection(Section):
    """A learning-rate scheduler from ``torch.optim.lr_scheduler`` (or ``cosine``/``constant``)."""

    name: str = Field(
        "cosine",
        description="`cosine` (to min_lr_ratio), `constant`, or any torch.optim.lr_scheduler "
        "class name such as `StepLR`.",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")
    interval: Literal["step", "epoch"] = Field("step", description="When the scheduler steps.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Final lr / peak lr for `cosine`.")


class OptimSection(Section):
    """The optimiser: AdamW by default, with no-weight-decay parameter groups and warm-up."""

    name: str = Field("AdamW", description="A torch.optim optimiser class name.")
    lr: float = Field(3e-4, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="Decoupled weight decay.")
    betas: tuple[float, float] = Field((0.9, 0.95), description="Adam betas.")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon.")
    no_decay: list[str] = Field(
        default_factory=lambda: ["bias", "norm", "embed"],
        description="Parameters whose name contains one of these substrings (case-insensitive), "
        "and every 1-D parameter, get no weight decay.",
    )
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps from 0 to `lr`.")
    scheduler: SchedulerSection | None = Field(None, description="Schedule after warm-up.")


class CheckpointSection(Section):
    """Which checkpoints to keep and how often to write them."""

    every_n_steps: int | None = Field(None, gt=0, description="Also save every N steps.")
    every_n_epochs: int | None = Field(1, gt=0, description="Save at the end of every N epochs.")
    save_last: bool = Field(True, description="Keep `last.ckpt` for resumption.")
    save_top_k: int = Field(1, ge=-1, description="Best checkpoints kept (-1: all).")
    monitor: str = Field("val/loss", description="Metric that decides the best checkpoint.")
    mode: Literal["min", "max"] = Field("min", description="Whether lower or higher is better.")


class EarlyStoppingSection(Section):
    """Stop when a monitored metric has stopped improving."""

    monitor: str = Field("val/loss", description="Metric to watch.")
    patience: int = Field(10, ge=1, description="Validation rounds without improvement.")
    min_delta: float = Field(0.0, ge=0, description="Smallest change counted as improvement.")
    mode: Literal["min", "max"] = Field("min", description="Whether lower or higher is better.")


class SWASection(Section):
    """Stochastic weight averaging (Izmailov et al., 2018)."""

    lrs: float = Field(1e-2, gt=0, description="SWA learning rate.")
    epoch_start: int | float = Field(
        0.8, gt=0, description="Epoch to start at (an integer), or a fraction of max_epochs."
    )


class FreeRunningSection(Section):
    """K-step free-running training of token models (scheduled sampling over K steps)."""

    k_steps: int = Field(4, ge=1, description="Steps the model feeds its own predictions back.")
    prob: float = Field(0.5, ge=0, le=1, description="Probability a batch is trained free-running.")
    sampling: Literal["argmax", "multinomial"] = Field(
        "argmax", description="How fed-back tokens are chosen."
    )


class TrainerSection(Section):
    """How to train: length, hardware, precision, checkpoints and the optional extras."""

    max_epochs: int | None = Field(None, gt=0, description="Epoch limit.")
    max_steps: int = Field(-1, ge=-1, description="Optimiser-step limit (-1: none).")
    accelerator: str = Field("auto", description="`cpu`, `gpu`, `auto`, ...")
    devices: int | str | list[int] = Field("auto", description="Devices per node.")
    num_nodes: int = Field(1, ge=1, description="Machines.")
    strategy: str = Field("auto", description="`auto`, `ddp`, `ddp_spawn`, `fsdp`, ...")
    precision: Literal["32", "32-true", "16-mixed", "bf16-mixed", "bf16-true", "64-true"] = Field(
        "32-true", description="Numeric precision."
    )
    gradient_clip_val: float | None = Field(1.0, gt=0, description="Clip gradient norm.")
    accumulate_grad_batches: int = Field(1, ge=1, description="Batches per optimiser step.")
    val_check_interval: float | int | None = Field(None, description="Validate every N steps.")
    check_val_every_n_epoch: int | None = Field(1, ge=1, description="Validate every N epochs.")
    limit_train_batches: float | int | None = Field(None, description="Batches per epoch.")
    limit_val_batches: float | int | None = Field(None, description="Validation batches.")
    log_every_n_steps: int = Field(10, ge=1, description="Logging cadence.")
    compile: bool = Field(False, description="Wrap the model in torch.compile.")
    deterministic: bool = Field(False, description="Use deterministic algorithms.")
    matmul_precision: Literal["highest", "high", "medium"] | None = Field(
        None, description="torch.set_float32_matmul_precision."
    )
    checkpoint: CheckpointSection = Field(default_factory=CheckpointSection)
    early_stopping: EarlyStoppingSection | None = Field(None, description="Off by default.")
    swa: SWASection | None = Field(None, description="Off by default.")
    batch_size_finder: bool = Field(False, description="Search the largest batch size (opt-in).")
    free_running: FreeRunningSection | None = Field(None, description="Token models only.")
    loggers: list[Literal["csv", "tensorboard", "wandb"]] = Field(
        default_factory=lambda: ["csv"], description="Metric loggers."
    )
    progress_bar: bool = Field(True, description="Show a rich progress bar.")
    performance_monitor: bool = Field(True, description="Log step time, throughput, memory.")

    @model_validator(mode="after")
    def _has_a_limit(self) -> TrainerSection:
        if self.max_epochs is None and self.max_steps == -1:
            object.__setattr__(self, "max_epochs", 10)
        return self


class EvaluationSection(Section):
    """Which evaluators judge a trained model, and on which split."""

    evaluators: list[ComponentSpec] = Field(
        default_factory=list, description="Components of kind `evaluators`, run in order."
    )
    split: Literal["val", "test"] = Field("test", description="Split the evaluators use.")
    out_dir: Path | None = Field(None, description="Report folder (default: <run>/eval).")


class PreprocessSection(Section):
    """Turning raw recordings into a prepared dataset (``ephys preprocess``)."""

    source: ComponentSpec = Field(description="A component of kind `sources` (discovery).")
    stages: list[ComponentSpec] = Field(
        default_factory=list, description="Components of kind `preprocessing`, applied in order."
    )
    out_dir: Path = Field(description="Folder the prepared dataset is written to.")
    workers: int = Field(1, ge=1, description="Parallel processes.")
    scheduler: str | None = Field(None, description="Dask scheduler address (cluster runs).")
    mix_pipelines: bool = Field(
        False,
        description="Allow adding sessions to a folder that holds sessions prepared by another "
        "pipeline (the manifest then lists every pipeline); refused by default.",
    )


class RunConfig(Section):
    """A whole run: every section is optional, and each command checks those it needs."""

    name: str = Field(
        "run", description="Run name: the run's folder inside `out_dir` (one folder name)."
    )
    seed: int = Field(0, description="Seed for every random number generator.")
    out_dir: Path = Field(Path("runs"), description="Parent folder of run folders.")
    preprocessing: PreprocessSection | None = None
    tokenizer: ComponentSpec | None = Field(None, description="A `tokenizers` component.")
    data: DataSection | None = None
    model: ComponentSpec | None = Field(None, description="A `models` component.")
    loss: ComponentSpec | None = Field(None, description="A `losses` component.")
    trainer: TrainerSection = Field(default_factory=TrainerSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)

    _resolved: dict[str, tuple[str, BaseModel]] = PrivateAttr(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _one_folder(cls, value: str) -> str:
        problem = folder_name_problem(value)
        if problem:
            raise ValueError(f"the run name {problem}")
        return value

    _source: str | None = PrivateAttr(default=None)

    @property
    def run_dir(self) -> Path:
        """The folder of this run: ``out_dir / name``."""
        return self.out_dir / self.name

    def component_specs(self) -> Iterator[tuple[str, str, ComponentSpec]]:
        """Every component reference as ``(path, kind, spec)``, e.g. ``("model", "models", s)``."""
        if self.preprocessing is not None:
            yield "preprocessing.source", "sources", self.preprocessing.source
            for i, stage in enumerate(self.preprocessing.stages):
                yield f"preprocessing.stages[{i}]", "preprocessing", stage
        if self.tokenizer is not None:
            yield "tokenizer", "tokenizers", self.tokenizer
        if self.data is not None:
            yield "data.dataset", "datasets", self.data.dataset
        if self.model is not None:
            yield "model", "models", self.model
        if self.loss is not None:
            yield "loss", "losses", self.loss
        for i, spec in enumerate(self.evaluation.evaluators):
            yield f"evaluation.evaluators[{i}]", "evaluators", spec

    def require(self, *sections: str, command: str) -> None:
        """Raise a clear error if a section a command needs is missing."""
        missing = [s for s in sections if getattr(self, s) is None]
        if missing:
            raise ConfigError(
                [f"{s}: `ephys {command}` needs this section" for s in missing], source=self._source
            )

    def resolve(self, sections: Iterable[str] | None = None) -> RunConfig:
        """Phase 2: validate component parameters against each component's ``Config``.

        Parameters
        ----------
        sections
            Top-level sections to resolve (``"model"``, ``"data"``, ...); all by default. Only
            the components named there are looked up, and components declared through a
            :class:`~ephys_core.components.LazyComponent` are not even imported.

        Returns
        -------
        RunConfig
            ``self``, with validated parameters available from :meth:`params` and the
            current names of components (deprecated aliases resolved) from
            :meth:`component_name`.

        Raises
        ------
        ComponentSpecError
            Listing every problem, each with its full path.
        """
        from ephys_core.plugins import get_registry

        wanted = None if sections is None else set(sections)
        problems: list[str] = []
        for path, kind, spec in self.component_specs():
            if wanted is not None and path.split(".")[0].split("[")[0] not in wanted:
                continue
            registry = get_registry(kind)
            try:
                name = registry.canonical(spec.name)
                params = registry.validate_params(name, spec.params, prefix=f"{path}.params")
            except ConfigError as err:
                problems.extend(err.problems)
                continue
            except EphysError as err:
                problems.append(f"{path}.name: {err}")
                continue
            self._resolved[path] = (name, params)
        if problems:
            raise ComponentSpecError(problems, source=self._source)
        return self

    def params(self, path: str) -> BaseModel:
        """The validated ``Config`` of the component at ``path`` (resolving it if needed)."""
        return self._component(path)[1]

    def component_name(self, path: str) -> str:
        """The registry name of the component at ``path``, deprecated aliases resolved."""
        return self._component(path)[0]

    def _component(self, path: str) -> tuple[str, BaseModel]:
        if path not in self._resolved:
            self.resolve([path.split(".")[0].split("[")[0]])
        return self._resolved[path]

    def set_params(self, path: str, params: BaseModel) -> None:
        """Replace the validated parameters at ``path`` with ``params``, already validated.

        The training engine uses it once it has filled the model's data-derived parameters
        (``n_channels``, ``vocab_size``, ...), so that everything built afterwards, and the
        configuration stored with the checkpoints, use them.
        """
        self._resolved[path] = (self.component_name(path), params)

    def to_data(self) -> dict[str, Any]:
        """JSON-ready content, with resolved component names and parameters written out."""
        data = self.model_dump(mode="json")
        for path, (name, params) in self._resolved.items():
            node: Any = data
            for part in path.replace("[", ".").replace("]", "").split("."):
                node = node[int(part)] if part.isdigit() else node[part]
            node["name"] = name
            node["params"] = params.model_dump(mode="json")
        return data


_COMPONENT_SLOTS = (
    ("model",),
    ("loss",),
    ("tokenizer",),
    ("data", "dataset"),
    ("preprocessing", "source"),
    ("preprocessing", "stages", "*"),
    ("evaluation", "evaluators", "*"),
)


def _expand_shorthand(raw: dict[str, Any]) -> None:
    """Turn ``model: gpt2meg`` into ``model: {name: gpt2meg}`` so overrides can reach params."""

    def visit(node: Any, path: tuple[str, ...]) -> Any:
        if not path:
            return {"name": node} if isinstance(node, str) else node
        head, rest = path[0], path[1:]
        if head == "*" and isinstance(node, list):
            return [visit(item, rest) for item in node]
        if isinstance(node, dict) and head in node:
            node[head] = visit(node[head], rest)
        return node

    for slot in _COMPONENT_SLOTS:
        visit(raw, slot)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) configuration file into a mapping, with clear errors."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"not valid YAML{where}: {problem}", source=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"<root>: expected a mapping of sections, got {type(data).__name__}", source=str(path)
        )
    return data


def load_config(
    source: str | Path | Mapping[str, Any],
    overrides: Iterable[str] = (),
    *,
    hooks: bool = True,
) -> RunConfig:
    """Phase 1: read, override and structurally validate a run configuration.

    Parameters
    ----------
    source
        A YAML file or an already-parsed mapping.
    overrides
        ``"dotted.key=value"`` strings applied in order (values are parsed as YAML).
    hooks
        Let installed plugins adjust the configuration (``ephys_configure_run``) before it is
        validated.

    Raises
    ------
    ConfigError
        With one line per problem, each naming its full path.
    """
    import copy

    if isinstance(source, Mapping):
        raw, label = copy.deepcopy(dict(source)), None
    else:
        raw, label = read_config_file(source), str(source)
    _expand_shorthand(raw)
    try:
        apply_overrides(raw, overrides)
    except ConfigError as err:
        raise ConfigError(err.problems, source=label) from None
    if hooks:
        from ephys_core.plugins import get_hooks

        get_hooks().configure_run(raw)
    try:
        config = validate_model(RunConfig, raw)
    except ConfigError as err:
        raise ConfigError(err.problems, source=label) from None
    assert isinstance(config, RunConfig)
    config._source = label
    return config
