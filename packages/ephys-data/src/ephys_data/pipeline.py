"""Running a preprocessing pipeline over every recording of a data set.

One failing recording never stops the others: each session is processed in isolation, its
failure is recorded with the file and the reason, and the summary says the run was partial.
Sessions already written with the same pipeline configuration from the same unchanged source
are skipped, so an interrupted run resumes where it stopped; sessions whose configuration
changed are redone. Work runs in-process (1 worker), on a local process pool (``workers > 1``)
or on a Dask distributed cluster (``scheduler``), the engine OSL-ephys itself uses.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ephys_core.errors import ConfigError, EphysError
from ephys_core.logging import get_logger
from ephys_core.protocols import RecordingRef
from ephys_core import get_registry
from ephys_data.format import session_dir, write_manifest, write_session
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
        ``{"name": ..., "params": {...}}`` mappings (or objects with ``name`` and ``params``).
    path
        Where the stages sit in the configuration, for error messages.

    Raises
    ------
    ConfigError
        An unknown stage, invalid parameters, or a pipeline that does not start by reading.
    """

    def __init__(self, stages: Sequence[Any], path: str = "preprocessing.stages") -> None:
        registry = get_registry("preprocessing")
        problems: list[str] = []
        self.specs: list[dict[str, Any]] = []
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
            self.specs.append({"name": name, "params": config.model_dump(mode="json")})
        if not problems and not self.specs:
            problems.append(f"{path}: the pipeline has no stages")
        if not problems:
            first = registry.load(self.specs[0]["name"])
            if getattr(first, "requires", None) != "unloaded":
                problems.append(
                    f"{path}[0].name: the pipeline must start with a stage that reads the "
                    f"recording (such as `read`), not {self.specs[0]['name']!r}"
                )
        if problems:
            raise ConfigError(problems)

    @property
    def config_hash(self) -> str:
        """Digest of the stage names and complete parameters."""
        text = json.dumps(self.specs, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def run(self, recording: Recording) -> Recording:
        """Apply every stage in order."""
        registry = get_registry("preprocessing")
        for spec in self.specs:
            stage = registry.create(spec["name"], spec["params"])
            started = time.perf_counter()
            recording = stage(recording)
            logger.debug(
                "%s: %s took %.2f s", recording.name, spec["name"], time.perf_counter() - started
            )
        return recording


def _name_params(stage: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(stage, str):
        return stage, {}
    if isinstance(stage, Mapping):
        return str(stage["name"]), dict(stage.get("params") or {})
    return str(stage.name), dict(stage.params or {})


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


def is_done(out_dir: Path, ref: RecordingRef, config_hash: str) -> bool:
    """Whether ``ref`` is already prepared in ``out_dir`` by this configuration and source."""
    meta_path = session_dir(out_dir, ref.name) / "meta.json"
    if not meta_path.is_file():
        return False
    try:
        provenance = json.loads(meta_path.read_text(encoding="utf-8"))["provenance"]
    except (OSError, ValueError, KeyError):
        return False
    return provenance.get("config_hash") == config_hash and provenance.get(
        "source_fingerprint"
    ) == source_fingerprint(Path(ref.path))


def process_session(
    ref: RecordingRef, specs: list[dict[str, Any]], out_dir: str | Path, config_hash: str
) -> SessionResult:
    """Preprocess one recording and write it; never raises (failures are in the result).

    This is the unit of work sent to process pools and Dask workers.
    """
    started = time.perf_counter()
    try:
        pipeline = Pipeline(specs)
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
        write_session(
            Path(out_dir),
            recording,
            {
                "source": str(ref.path),
                "source_fingerprint": source_fingerprint(Path(ref.path)),
                "config_hash": config_hash,
                "pipeline": specs,
                "versions": _versions(),
            },
        )
        return SessionResult(
            ref.name, str(ref.path), "done", time.perf_counter() - started, recording.duration
        )
    except Exception as exc:  # one bad recording must not stop the others
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return SessionResult(
            ref.name, str(ref.path), "failed", time.perf_counter() - started, error=detail
        )


Event = Callable[[str, Any], None]


def preprocess(
    source: Any,
    stages: Sequence[Any],
    out_dir: str | Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    on_event: Event | None = None,
) -> PreprocessSummary:
    """Discover recordings with ``source``, run ``stages`` on each, and write the dataset.

    Parameters
    ----------
    source
        A ``sources`` component spec (``{"name": "folder", "params": {"root": ...}}``).
    stages
        Stage specs, starting with a reading stage.
    out_dir
        Dataset root to write (created if needed).
    workers
        Local processes; 1 runs in this process.
    scheduler
        Address of a Dask distributed scheduler (``tcp://host:8786``); overrides ``workers``.
    on_event
        Called with ``("plan", {"total": n, "skipped": k})`` and ``("result", SessionResult)``
        for progress reporting.

    Returns
    -------
    PreprocessSummary
        Per-session results and the manifest written.
    """
    notify = on_event or (lambda kind, payload: None)
    pipeline = Pipeline(stages)
    name, params = _name_params(source)
    refs = list(get_registry("sources").create(name, params).discover())
    names = [ref.name for ref in refs]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(
            f"preprocessing.source: session names must be unique; {name!r} "
            f"gave duplicates: {dupes[:10]}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
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
            "source": {"name": name, "params": params},
            "failures": failures,
        },
    )
    summary.results.sort(key=lambda r: r.name)
    return summary


def _execute(
    refs: list[RecordingRef], pipeline: Pipeline, out: Path, workers: int, scheduler: str | None
):
    args = (pipeline.specs, str(out), pipeline.config_hash)
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
        from ephys_core.errors import MissingDependencyError

        raise MissingDependencyError(
            "running on a Dask cluster", "dask.distributed", 'pip install "ephys-data[dask]"'
        ) from None
    with Client(scheduler) as client:
        futures = [client.submit(process_session, ref, *args, pure=False) for ref in refs]
        for future in as_completed(futures):
            yield future.result()
