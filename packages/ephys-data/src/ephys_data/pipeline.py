"""Running a preprocessing pipeline over every recording of a data set.

One failing recording never stops the others: each session is processed in isolation, its
failure is recorded with the file and the reason, and the summary says the run was partial.
Sessions already written with the same pipeline configuration from the same unchanged source
are skipped, so an interrupted run resumes where it stopped. A folder holding sessions of
another pipeline is refused unless mixing is allowed (``mix_pipelines``). A run holds an
exclusive lock on its output folder and first removes what killed runs left there. Work runs
in-process (1 worker), on a local process pool (``workers > 1``) or on a Dask distributed
cluster (``scheduler``), the engine OSL-ephys itself uses.

The pipeline is validated once, where it is built: :class:`Pipeline` holds each stage's
validated ``Config`` (a picklable pydantic model), the workers receive it as it is, and stages
are instantiated from those configs without validating them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from ephys_core import get_registry
from ephys_core.errors import ConfigError, EphysError, MissingDependencyError
from ephys_core.logging import get_logger
from ephys_core.protocols import RecordingRef
from ephys_data.format import (
    LOCK_FILE,
    DatasetFormatError,
    Session,
    SessionNameError,
    check_session_name,
    clean_leftovers,
    folder_lock,
    session_dir,
    write_manifest,
    write_session,
)
from ephys_data.recording import Recording

__all__ = [
    "DEFAULT_STAGES",
    "Pipeline",
    "PreprocessSummary",
    "SessionResult",
    "preprocess",
    "process_session",
]

logger = get_logger(__name__)

#: The pipeline ``ephys preprocess --input PATH`` runs when no configuration is given.
DEFAULT_STAGES: list[dict[str, Any]] = [
    {"name": "read", "params": {}},
    {"name": "bandpass", "params": {"l_freq": 0.5, "h_freq": 40.0}},
    {"name": "resample", "params": {"sfreq": 100.0}},
    {"name": "bad_channels", "params": {"action": "zero"}},
    {"name": "normalize", "params": {"method": "robust"}},
    {"name": "clip", "params": {"k": 5.0}},
]


@dataclass
class SessionResult:
    """What happened to one recording."""

    name: str
    source: str
    status: Literal["done", "skipped", "failed"]
    seconds: float = 0.0
    recording_seconds: float = 0.0
    error: str | None = None
    non_finite: int = 0


@dataclass
class PreprocessSummary:
    """The outcome of a preprocessing run."""

    out_dir: Path
    results: list[SessionResult] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    def count(self, status: str) -> int:
        """Sessions with ``status``."""
        return sum(r.status == status for r in self.results)

    @property
    def partial(self) -> bool:
        """Whether some recordings failed."""
        return self.count("failed") > 0


class Pipeline:
    """An ordered list of validated preprocessing stages.

    Parameters
    ----------
    stages
        ``{"name": ..., "params": {...}}`` mappings, objects with ``name`` and ``params`` (a
        ``ComponentSpec``), or ``(name, config)`` pairs; ``params`` or ``config`` may be a
        mapping or an already validated instance of the stage's ``Config`` (as
        :meth:`ephys_core.config.RunConfig.params` returns), which is used as it is.
    path
        Where the stages sit in the configuration, for error messages.

    Attributes
    ----------
    stages
        ``(name, validated Config instance)`` of every stage, in order.
    specs
        The same as JSON-ready ``{"name", "params"}`` mappings (complete parameters).

    Raises
    ------
    ConfigError
        An unknown stage, invalid parameters, or a pipeline that does not start by reading.
    """

    def __init__(self, stages: Sequence[Any], path: str = "preprocessing.stages") -> None:
        registry = get_registry("preprocessing")
        problems: list[str] = []
        self.stages: list[tuple[str, BaseModel]] = []
        for i, stage in enumerate(stages):
            name, params = _name_params(stage)
            where = f"{path}[{i}]"
            try:
                config = registry.validate_params(name, params, prefix=f"{where}.params")
            except ConfigError as err:
                problems.extend(err.problems)
                continue
            except EphysError as err:
                problems.append(f"{where}.name: {err}")
                continue
            self.stages.append((name, config))
        if not problems and not self.stages:
            problems.append(f"{path}: the pipeline has no stages")
        if not problems:
            first = registry.load(self.stages[0][0])
            if getattr(first, "requires", None) != "unloaded":
                problems.append(
                    f"{path}[0].name: the pipeline must start with a stage that reads the "
                    f"recording (such as `read`), not {self.stages[0][0]!r}"
                )
        if problems:
            raise ConfigError(problems)
        self.specs: list[dict[str, Any]] = [
            {"name": name, "params": config.model_dump(mode="json")} for name, config in self.stages
        ]

    @property
    def config_hash(self) -> str:
        """Digest of the stage names and complete parameters."""
        text = json.dumps(self.specs, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def run(self, recording: Recording) -> Recording:
        """Apply every stage in order (each made from its validated config, not re-validated)."""
        registry = get_registry("preprocessing")
        for name, config in self.stages:
            stage = registry.create(name, config)
            started = time.perf_counter()
            recording = stage(recording)
            logger.debug("%s: %s took %.2f s", recording.name, name, time.perf_counter() - started)
        return recording


def _name_params(stage: Any) -> tuple[str, Any]:
    """``(name, params)`` of a stage or source spec; validated configs are kept as they are."""
    if isinstance(stage, str):
        return stage, {}
    if isinstance(stage, tuple) and len(stage) == 2:
        name, params = stage
    elif isinstance(stage, Mapping):
        name, params = stage["name"], stage.get("params")
    else:
        name, params = stage.name, stage.params
    if isinstance(params, BaseModel):
        return str(name), params
    return str(name), dict(params or {})


def _jsonable_params(params: Any) -> Any:
    return params.model_dump(mode="json") if isinstance(params, BaseModel) else params


def source_fingerprint(path: Path) -> str:
    """Cheap identity of a source file or folder: sizes and modification times."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for file in files:
        st = file.stat()
        h.update(f"{file.relative_to(path.parent)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("ephys-data", "ephys-core", "mne", "numpy", "osl-ephys"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return found


def _provenance(meta_path: Path) -> dict[str, Any] | None:
    try:
        provenance = json.loads(meta_path.read_text(encoding="utf-8"))["provenance"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return provenance if isinstance(provenance, dict) else None


def is_done(out_dir: Path, ref: RecordingRef, config_hash: str) -> bool:
    """Whether ``ref`` is already prepared in ``out_dir`` by this configuration and source
    (a session whose sidecar is damaged or edited is not: it is prepared again)."""
    folder = session_dir(out_dir, ref.name)
    if not (folder / "meta.json").is_file():
        return False
    try:
        provenance = Session.open(folder).meta.get("provenance")
    except DatasetFormatError:
        return False
    if not isinstance(provenance, dict):
        return False
    try:
        fingerprint = source_fingerprint(Path(ref.path))
    except OSError:
        return False
    return (
        provenance.get("config_hash") == config_hash
        and provenance.get("source_fingerprint") == fingerprint
    )


def process_session(ref: RecordingRef, pipeline: Pipeline, out_dir: str | Path) -> SessionResult:
    """Preprocess one recording with a validated ``pipeline`` and write it; never raises
    (failures are in the result).

    This is the unit of work sent to process pools and Dask workers.
    """
    started = time.perf_counter()
    try:
        recording = Recording.unloaded(
            ref.path,
            name=ref.name,
            dataset=ref.dataset,
            subject=ref.subject,
            session=ref.session,
            task=ref.task,
            run=ref.run,
        )
        recording = pipeline.run(recording)
        if recording.state == "unloaded":
            raise EphysError("the pipeline never loaded the recording")
        path = write_session(
            Path(out_dir),
            recording,
            {
                "source": str(ref.path),
                "source_fingerprint": source_fingerprint(Path(ref.path)),
                "config_hash": pipeline.config_hash,
                "pipeline": pipeline.specs,
                "versions": _versions(),
            },
        )
        non_finite = Session.open(path).non_finite or 0
        return SessionResult(
            ref.name,
            str(ref.path),
            "done",
            time.perf_counter() - started,
            recording.duration,
            non_finite=non_finite,
        )
    except Exception as exc:  # one bad recording must not stop the others
        # ephys's own errors say what is wrong; anything else keeps its type
        text = " ".join(str(exc).split())
        detail = text if isinstance(exc, EphysError) else f"{type(exc).__name__}: {text}"
        return SessionResult(
            ref.name, str(ref.path), "failed", time.perf_counter() - started, error=detail
        )


Event = Callable[[str, Any], None]


def _discover(name: str, params: Any) -> list[RecordingRef]:
    """The recordings of source ``name``, with unique, usable session names."""
    try:
        refs = list(get_registry("sources").create(name, params).discover())
    except OSError as err:
        raise ConfigError(
            f"preprocessing.source: {name!r} cannot read {err.filename or 'its root'}: "
            f"{err.strerror or err}"
        ) from None
    bad = []
    for ref in refs:
        try:
            check_session_name(ref.name)
        except SessionNameError as err:
            bad.append(f"{err}")
    if bad:
        raise ConfigError(
            f"preprocessing.source: {name!r} gave {len(bad)} unusable session name(s); "
            f"the first: {bad[0]}"
        )
    names = [ref.name for ref in refs]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(
            f"preprocessing.source: session names must be unique; {name!r} "
            f"gave duplicates: {dupes[:10]}"
        )
    return refs


def _other_pipelines(out: Path, config_hash: str) -> dict[str, list[str]]:
    """``config_hash`` -> session names of the sessions in ``out`` prepared by other pipelines
    (sessions without a recorded pipeline, e.g. imported ones, count as ``"unknown"``, those
    whose sidecar cannot be read as ``"unreadable"``)."""
    others: dict[str, list[str]] = {}
    base = out / "sessions"
    if not base.is_dir():
        return others
    for folder in sorted(base.iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        provenance = _provenance(folder / "meta.json")
        found = "unreadable" if provenance is None else provenance.get("config_hash") or "unknown"
        if found != config_hash:
            others.setdefault(str(found), []).append(folder.name)
    return others


def _prepare_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir: {out} exists and is not a folder; choose a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / LOCK_FILE).touch()
    except OSError as err:
        raise ConfigError(f"out_dir: cannot write into {out}: {err.strerror or err}") from None


def preprocess(
    source: Any,
    stages: Sequence[Any] | Pipeline,
    out_dir: str | Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    on_event: Event | None = None,
    mix_pipelines: bool = False,
) -> PreprocessSummary:
    """Discover recordings with ``source``, run ``stages`` on each, and write the dataset.

    Parameters
    ----------
    source
        A ``sources`` component spec (``{"name": "folder", "params": {"root": ...}}``; the
        params may be a validated ``Config`` instance).
    stages
        Stage specs, starting with a reading stage (see :class:`Pipeline`), or a
        :class:`Pipeline`.
    out_dir
        Dataset root to write (created if needed). The run holds an exclusive lock on
        ``<out_dir>/.lock`` while it works and first removes what killed runs left there.
    workers
        Local processes; 1 runs in this process.
    scheduler
        Address of a Dask distributed scheduler (``tcp://host:8786``); overrides ``workers``.
    on_event
        Called with ``("plan", {"total": n, "skipped": k})`` and ``("result", SessionResult)``
        for progress reporting.
    mix_pipelines
        Allow writing into a folder that holds sessions prepared by another pipeline; the
        manifest then lists every pipeline (``pipelines``) and says ``mixed: true``.

    Returns
    -------
    PreprocessSummary
        Per-session results and the manifest written.

    Raises
    ------
    ConfigError
        An invalid pipeline or source, or (without ``mix_pipelines``) a folder holding
        sessions of another pipeline; nothing is processed then.
    FolderLockedError
        Another run is writing into ``out_dir``.
    """
    notify = on_event or (lambda kind, payload: None)
    pipeline = stages if isinstance(stages, Pipeline) else Pipeline(stages)
    name, params = _name_params(source)
    refs = _discover(name, params)
    out = Path(out_dir)
    _prepare_out_dir(out)
    with folder_lock(out) as locked:
        if locked:
            clean_leftovers(out)
        others = _other_pipelines(out, pipeline.config_hash)
        if others and not mix_pipelines:
            count = sum(len(v) for v in others.values())
            raise ConfigError(
                f"out_dir: {out} holds {count} session(s) prepared with another pipeline "
                f"(config_hash {', '.join(sorted(others))}, this one is "
                f"{pipeline.config_hash}); write to another folder (--out), or allow mixing "
                "pipelines in one dataset (--mix-pipelines, preprocessing.mix_pipelines: true)"
            )
        summary = PreprocessSummary(out)
        todo = []
        for ref in refs:
            if is_done(out, ref, pipeline.config_hash):
                summary.results.append(SessionResult(ref.name, str(ref.path), "skipped"))
            else:
                todo.append(ref)
        notify("plan", {"total": len(refs), "skipped": len(refs) - len(todo)})
        logger.info(
            "%d recordings found, %d already prepared, %d to process",
            len(refs),
            len(refs) - len(todo),
            len(todo),
        )
        for result in _execute(todo, pipeline, out, workers, scheduler):
            summary.results.append(result)
            if result.status == "failed":
                logger.warning("%s (%s) failed: %s", result.name, result.source, result.error)
            elif result.non_finite:
                logger.warning(
                    "%s (%s): %d sample(s) are NaN or infinite; datasets refuse the session "
                    "unless `non_finite: skip`",
                    result.name,
                    result.source,
                    result.non_finite,
                )
            notify("result", result)
        failures = sorted(
            (
                {"name": r.name, "source": r.source, "error": r.error}
                for r in summary.results
                if r.status == "failed"
            ),
            key=lambda item: item["name"],
        )
        summary.manifest = write_manifest(
            out,
            {
                "pipeline": pipeline.specs,
                "config_hash": pipeline.config_hash,
                "source": {"name": name, "params": _jsonable_params(params)},
                "failures": failures,
            },
        )
    if summary.manifest.get("mixed"):
        logger.warning(
            "%s now holds sessions of %d pipelines (see `pipelines` in its manifest)",
            out,
            len(summary.manifest["pipelines"]),
        )
    summary.results.sort(key=lambda r: r.name)
    return summary


def _execute(
    refs: list[RecordingRef], pipeline: Pipeline, out: Path, workers: int, scheduler: str | None
):
    args = (pipeline, str(out))
    if not refs:
        return
    if scheduler:
        yield from _execute_dask(refs, args, scheduler)
    elif workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_limit_threads, initargs=(threads,)
        ) as pool:
            futures = [pool.submit(process_session, ref, *args) for ref in refs]
            for future in as_completed(futures):
                yield future.result()
    else:
        for ref in refs:
            yield process_session(ref, *args)


def _limit_threads(threads: int) -> None:
    """Share the cores between pool workers instead of each starting one BLAS thread per core."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(threads)


def _execute_dask(refs: list[RecordingRef], args: tuple[Any, ...], scheduler: str):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise MissingDependencyError(
            "running on a Dask cluster", "dask.distributed", 'pip install "ephys-data[dask]"'
        ) from None
    with Client(scheduler) as client:
        futures = [client.submit(process_session, ref, *args, pure=False) for ref in refs]
        for future in as_completed(futures):
            yield future.result()
