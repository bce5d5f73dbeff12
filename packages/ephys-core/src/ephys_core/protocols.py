"""What a component of each kind must provide, with shapes and units.

These are :class:`typing.Protocol` classes describing what the training engine, the evaluators
and the command line need from a component. Components do not inherit from them (the optional
mixins in :mod:`ephys_core.components` supply defaults); conformance is proven by the shared
suite in :mod:`ephys_core.testing`, not by ``isinstance``. Importing this module costs nothing:
torch and MNE types appear only in annotations.

Conventions, used throughout ephys
----------------------------------
* ``B`` batch, ``C`` channels (sensors or parcels), ``T`` time samples, ``V`` vocabulary size.
* Signals are ``(B, C, T)`` tensors in the units of the prepared dataset (normalised units;
  each dataset stores how to map them back to tesla, volt or dSPM units).
* Token ids are integer tensors in ``[0, V)`` with the same ``(B, C, T)`` layout.
* Times are in seconds and frequencies in hertz unless a name says ``samples``.

Every component class has
-------------------------
``Config``
    A pydantic model of its parameters (``extra="forbid"``, every field described).
``example_config(workdir=None)``
    A tiny valid configuration used by the conformance suite and documentation. Components that
    read files (datasets, readers, discovery) write a tiny fixture under ``workdir`` when one is
    given and return a configuration that points at it.
``expected_failures``
    Optional mapping of conformance check name to the reason it is expected to fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "DatasetBuilder",
    "EvaluationContext",
    "Evaluator",
    "Segment",
    "SegmentSource",
    "TokenCodec",
    "Forecaster",
    "Loss",
    "Model",
    "PreprocessingStage",
    "Recording",
    "RecordingRef",
    "Source",
    "Split",
    "Tokenizer",
]

Split = Literal["train", "val", "test"]


class Model(Protocol):
    """A neural network (a ``torch.nn.Module``) built from its ``Config``.

    Attributes
    ----------
    causal
        ``True`` if the output at time ``t`` depends only on inputs at times ``<= t``. The
        conformance suite checks this by perturbing the future and by gradients.
    input_time_axis, output_time_axis
        Axes of time in the primary input and output tensors (default ``-1`` and ``-2``: a
        ``(B, C, T)`` input giving ``(B, C, T, V)`` logits).

    A model may also define ``auxiliary_loss() -> Tensor | None``: a term of its last forward
    pass that training adds to the loss (a mixture of experts' load balancing, say), logged
    as ``<stage>/aux_loss``.
    """

    Config: ClassVar[type[BaseModel]]
    causal: ClassVar[bool]
    input_time_axis: ClassVar[int]
    output_time_axis: ClassVar[int]

    def __init__(self, config: BaseModel) -> None: ...

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> BaseModel:
        """A tiny configuration that builds in well under a second on a CPU."""
        ...

    def forward(self, inputs: Any) -> Any:
        """Map a batch to predictions.

        Parameters
        ----------
        inputs
            What the paired dataset yields as inputs: a tensor, usually ``(B, C, T)`` token ids
            or signals, or a mapping whose first entry (``"x"``) is that tensor (the *primary
            input*) followed by side information: ``"condition"`` ``(B, T)`` labels,
            ``"subject"`` ``(B,)`` indices, ``"pos"`` ``(B, C, 2)`` positions,
            ``"ch_type"`` ``(B, C)`` sensor types, ``"mask"`` ``(B, C)`` channel presence.

        Returns
        -------
        Any
            A tensor, usually logits ``(B, C, T, V)`` or signals ``(B, C, T)`` (the *primary
            output*), or a tuple or mapping whose first entry (or ``"logits"``) is that tensor.
        """
        ...

    def example_input(self, batch_size: int = 2) -> Any:
        """A valid random input batch of ``batch_size`` examples."""
        ...

    def output_shape(self, inputs: Any) -> tuple[int, ...]:
        """The shape of the primary output for ``inputs``."""
        ...


class Forecaster(Protocol):
    """An autoregressive model that can continue a context (optional extension of Model)."""

    def forecast(
        self, context: Any, n_steps: int, *, sampler: Any = None, use_cache: bool = True
    ) -> Any:
        """Generate ``n_steps`` further time steps after ``context``.

        Parameters
        ----------
        context
            A batch as :meth:`Model.forward` takes it, ``(B, C, T_ctx)`` in its primary input.
        n_steps
            Steps to generate. Contexts longer than the model's window slide; the cost of each
            step does not grow with the rollout's length.
        sampler
            How a token is chosen from logits (argmax, multinomial, top-k, top-p, temperature).
        use_cache
            Reuse attention keys and values between steps where the model supports it.

        Returns
        -------
        Any
            ``(B, C, n_steps)`` generated values in the layout of the primary input.
        """
        ...


class Loss(Protocol):
    """A training objective.

    Attributes
    ----------
    metrics
        Names of the metrics every call returns besides ``"loss"``; the training engine logs
        each one as ``train/<name>`` and ``val/<name>``.
    """

    Config: ClassVar[type[BaseModel]]
    metrics: ClassVar[tuple[str, ...]]

    def __call__(self, outputs: Any, targets: Any) -> Mapping[str, Any]:
        """Return ``{"loss": scalar tensor, <metric>: scalar tensor, ...}``."""
        ...

    def example_inputs(self, batch_size: int = 2) -> tuple[Any, Any]:
        """A valid ``(outputs, targets)`` pair; ``outputs`` requires grad."""
        ...


@dataclass(frozen=True, eq=False)
class Segment:
    """A stretch of one session, longer than a training window, on the dataset's item layout.

    Evaluators roll models out from a real context and compare with the true continuation;
    both come from one segment.

    Attributes
    ----------
    x
        ``(C, L)`` samples as the dataset stores them: signal in the dataset's units, or codes.
    labels
        ``(L,)`` int64 condition labels when the dataset's items carry them, else ``None``.
    subject
        The subject index items carry (``inputs["subject"]``), else ``None``.
    session
        The session's key (``<dataset>/<session name>``).
    start
        First sample of the segment within its session.
    entry
        The dataset's own handle on the session (what :class:`TokenCodec` needs to decode a
        session's codes); opaque to evaluators.
    """

    x: Any
    labels: Any
    subject: int | None
    session: str
    start: int
    entry: Any = field(default=None, repr=False, compare=False)


class SegmentSource(Protocol):
    """What evaluators need from a dataset beyond its windows (ephys-data's datasets have it)."""

    def longest_segment(self, split: Split) -> int:
        """Samples of the longest stretch one session of ``split`` offers."""
        ...

    def segments(self, split: Split, length: int, count: int, seed: int = 0) -> list[Segment]:
        """``count`` segments of ``length`` samples from ``split``, at seeded offsets, spread
        over its sessions in turn (never across sessions, never over unusable samples)."""
        ...

    def side_inputs(self, segments: Sequence[Segment], start: int, stop: int) -> dict[str, Any]:
        """The side tracks items carry besides ``"x"``, for samples ``[start, stop)`` of
        ``segments``: ``{"condition": (N, stop - start)}`` and ``{"subject": (N,)}`` when the
        dataset adds them to its items (empty otherwise)."""
        ...


class TokenCodec(Protocol):
    """Datasets whose items are tokens: the map between their codes and the signal."""

    def to_tokens(self, x: Any, segment: Segment) -> Any:
        """``(C, L)`` stored samples of ``segment`` -> int64 codes ``(C, L)``."""
        ...

    def to_signal(self, codes: Any, segment: Segment) -> Any:
        """``(C, L)`` codes -> signal in the dataset's units (each session's own scale)."""
        ...

    def encode_signal(self, signal: Any, segment: Segment) -> Any:
        """``(C, L)`` signal in the dataset's units -> int64 codes, as ``segment``'s were made
        (so that a continuous forecast goes through the same quantisation as the data)."""
        ...

    def bin_edges(self, segment: Segment) -> Any:
        """``(V + 1,)`` signal values separating the codes of ``segment`` (code ``k`` covers
        ``[edges[k], edges[k + 1])``, the outer edges infinite), or ``None`` when codes are
        not ordered amplitudes (learned codebooks)."""
        ...


@dataclass
class EvaluationContext:
    """Everything an evaluator may use.

    Attributes
    ----------
    model
        The trained model, in eval mode, on ``device``.
    datasets
        Split name -> dataset (``(inputs, targets)`` items).
    out_dir
        Folder for plots and files; the evaluator writes only inside it.
    device
        ``"cpu"``, ``"cuda"``, ...
    loss
        The training loss, if the run has one.
    data_spec
        The dataset's metadata (``n_channels``, ``sfreq``, ``vocab_size``, channel names, the
        scaling needed to return to physical units, ...).
    config
        The run configuration, if any.
    builder
        The dataset component that built ``datasets``: a :class:`SegmentSource` (segments
        longer than a window and their side tracks), and a :class:`TokenCodec` for token data.
    """

    model: Any
    datasets: Mapping[str, Any]
    out_dir: Path
    device: str = "cpu"
    loss: Any = None
    data_spec: Mapping[str, Any] = field(default_factory=dict)
    config: Any = None
    builder: SegmentSource | None = None


class Evaluator(Protocol):
    """Judges a trained model and writes its findings.

    Optionally, an evaluator renders its own result: ``report_section(result)`` returns its
    :class:`~ephys_core.reporting.ReportSection` of ``report.md`` and ``summary_tables(result)``
    the :class:`~ephys_core.reporting.SummaryTable` rows ``ephys eval`` prints. Without them
    the report shows the result as JSON and the command line its numbers
    (:mod:`ephys_core.reporting`); nothing else reads an evaluator's result layout.

    Attributes
    ----------
    outputs
        Keys every result of :meth:`evaluate` contains (documented per evaluator).
    """

    Config: ClassVar[type[BaseModel]]
    outputs: ClassVar[tuple[str, ...]]

    def evaluate(self, context: EvaluationContext) -> Mapping[str, Any]:
        """Run the evaluation; returns JSON-ready results with at least :attr:`outputs`."""
        ...

    @classmethod
    def example_context(cls, workdir: Path) -> EvaluationContext:
        """A tiny context (untrained model, small data) for the conformance suite."""
        ...


class Recording(Protocol):
    """The object preprocessing stages pass along (``ephys_data.Recording`` in practice)."""

    sfreq: float
    n_times: int
    ch_names: Sequence[str]

    def fingerprint(self) -> str:
        """A digest of the content, used to check that a stage did not mutate its input."""
        ...


class PreprocessingStage(Protocol):
    """One step of a preprocessing pipeline: ``Recording -> Recording``.

    Attributes
    ----------
    preserves_duration
        Whether the output lasts as long as the input (``n_times / sfreq`` up to one sample).
    """

    Config: ClassVar[type[BaseModel]]
    preserves_duration: ClassVar[bool]

    def __call__(self, recording: Recording) -> Recording:
        """Return the processed recording; the input is not modified."""
        ...

    def output_sfreq(self, sfreq: float) -> float:
        """Sampling frequency (Hz) of the output for an input sampled at ``sfreq`` Hz."""
        ...

    def example_input(self, workdir: Path) -> Recording:
        """A small recording this stage accepts (files, if any, are written to ``workdir``)."""
        ...


class Tokenizer(Protocol):
    """Maps continuous signals to integer codes and back.

    Attributes
    ----------
    causal
        Codes up to time ``t`` depend only on samples up to ``t``.
    time_stride
        Samples per code along time (1 for sample-wise tokenizers such as mu-law).
    roundtrip_tolerance
        Bound on ``||decode(encode(x)) - x|| / ||x||`` for :meth:`example_input` data, or
        ``None`` for a learned tokenizer (its accuracy is measured by its card).
    vocab_size
        Codes lie in ``[0, vocab_size)``.
    """

    Config: ClassVar[type[BaseModel]]
    causal: ClassVar[bool]
    time_stride: ClassVar[int]
    roundtrip_tolerance: float | None
    vocab_size: int

    def encode(self, signal: Any) -> Any:
        """``(..., C, T)`` float signal -> ``(..., C', T / time_stride)`` integer codes."""
        ...

    def decode(self, codes: Any) -> Any:
        """Integer codes -> ``(..., C, T)`` signal in the units :meth:`encode` received."""
        ...

    def example_input(self, batch_size: int = 2) -> Any:
        """A signal batch typical of what the tokenizer is meant for."""
        ...


class DatasetBuilder(Protocol):
    """Builds the train, validation and test datasets of a run from prepared data.

    Datasets are map-style (``__len__`` and ``__getitem__``); each item is an
    ``(inputs, targets)`` pair in the layout the paired models and losses expect.
    """

    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel) -> None: ...

    def build(self, split: Split) -> Any:
        """The dataset of ``split``; augmentations apply only to ``"train"``."""
        ...

    def data_spec(self) -> Mapping[str, Any]:
        """Facts models are configured from: ``n_channels``, ``n_times``, ``sfreq`` (Hz),
        ``vocab_size`` for token data, channel names and scaling parameters.

        The training engine fills model parameters of the same name that the user left unset.
        """
        ...


@dataclass(frozen=True)
class RecordingRef:
    """One recording found by a data source.

    Attributes
    ----------
    path
        File or folder MNE reads (a CTF ``.ds`` folder is one recording).
    name
        Unique, filesystem-safe session name, keeping subject, session and task
        (``sub-01_ses-02_task-rest``).
    dataset, subject, session, task, run
        BIDS-style entities where known.
    metadata
        Anything else the source knows (events file, condition mapping, ...).
    """

    path: Path
    name: str
    dataset: str = ""
    subject: str | None = None
    session: str | None = None
    task: str | None = None
    run: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """Discovers the recordings of a data set (BIDS, a folder, a named public data set)."""

    Config: ClassVar[type[BaseModel]]

    def discover(self) -> Sequence[RecordingRef]:
        """Every recording, in a stable order, with unique names."""
        ...
