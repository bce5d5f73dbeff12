"""Code datasets: a prepared dataset encoded once by a tokenizer, and decoded back.

``encode_dataset`` writes a prepared dataset (the same format, :mod:`ephys_data.format`) whose
sessions hold integer codes, plus a copy of the tokenizer folder under ``<out>/tokenizer``, so
the code dataset carries the identity of the tokenizer that made it. Token datasets
(``tokens_next_step`` and its relatives) read it without running the encoder again, and
decode through that very tokenizer.

Each session is written atomically; a session already encoded by the same tokenizer from the
same source session is skipped, so an interrupted run resumes where it stopped. Writing codes
of another tokenizer into the folder is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger
from ephys_data.format import (
    DatasetFormatError,
    PreparedDataset,
    Session,
    clean_leftovers,
    folder_lock,
    session_dir,
    write_manifest,
    write_session,
)
from ephys_data.recording import Recording

__all__ = [
    "TOKENIZER_FOLDER",
    "EncodeSummary",
    "decode_dataset",
    "encode_dataset",
    "fit_tokenizer",
    "montage_rows",
    "tokenizer_entry",
    "training_sample",
]

logger = get_logger(__name__)

#: where a code dataset keeps the tokenizer that made it
TOKENIZER_FOLDER = "tokenizer"
#: samples encoded at a time by sample-wise tokenizers (bounds memory on long sessions)
BLOCK = 1 << 18

Event = Callable[[str, Any], None]


@dataclass
class EncodeSummary:
    """What :func:`encode_dataset` or :func:`decode_dataset` did."""

    out_dir: Path
    tokenizer: dict[str, Any]
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    samples: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)


def tokenizer_entry(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The ``{"kind": "tokenizer", ...}`` transform of a session sidecar, if it has one."""
    entries = [t for t in meta.get("transforms", []) if t.get("kind") == "tokenizer"]
    return dict(entries[-1]) if entries else None


def _sessions(roots: Sequence[str | Path]) -> list[Session]:
    sessions = [s for root in roots for s in PreparedDataset(root).sessions()]
    names = [s.name for s in sessions]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"data: session names repeat across the roots: {dupes[:5]}")
    if not sessions:
        raise ConfigError(f"data: no sessions in {[str(r) for r in roots]}")
    return sessions


def training_sample(
    roots: Sequence[str | Path],
    split: Any = None,
    max_samples: int = 1_000_000,
    seed: int = 0,
    segment: int = 1,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Samples of the training split, every channel in the sessions' own order.

    Parameters
    ----------
    roots
        Prepared datasets of signals.
    split
        A :class:`~ephys_data.datasets.splits.SplitConfig` (or its dict); the datasets'
        default (by subject, 10 % validation, 10 % test) when ``None``. Use the split of the
        run the codes will train, so the tokenizer never sees its validation or test data.
    max_samples
        At most this many time points (drawn at random over the training sessions, in
        proportion to their length, without replacement).
    segment
        Draw runs of this many contiguous samples instead of single time points (for
        tokenizers that learn from sequences, such as ``bpe``): the result is then whole
        segments one after the other, each ``segment`` samples of one session.

    Returns
    -------
    (np.ndarray, dict)
        ``(C, N)`` float64 samples and the facts recorded as the tokenizer's ``fitted_on``:
        the training sessions' content digest, their count and seconds, the split, the number
        of samples.
    """
    from ephys_data.datasets.base import split_digest
    from ephys_data.datasets.catalog import Catalog
    from ephys_data.datasets.splits import SplitConfig, split_sessions

    config = split if isinstance(split, SplitConfig) else SplitConfig(**(split or {}))
    catalog = Catalog(roots)
    if catalog.is_codes:
        raise ConfigError("data: the sessions hold codes; fit a tokenizer on signals")
    train = split_sessions(catalog.entries, config)["train"]
    orders = {tuple(e.session.meta["ch_names"]) for e in train}
    if len(orders) != 1:
        raise ConfigError(
            "data: the training sessions have different channels; a tokenizer is fitted on "
            "one channel set (prepare the data with the same picks)"
        )
    spans = [e.span for e in train]
    lengths = np.array([b - a for a, b in spans], dtype=np.int64)
    total = int(lengths.sum())
    if total < 2:
        raise ConfigError("data: the training split has no samples to fit on")
    rng = np.random.default_rng(seed)
    segment = max(1, int(segment))
    counts = lengths // segment  # whole segments per session, on a grid from its start
    if int(counts.sum()) == 0:
        raise ConfigError(f"data: no training session holds {segment} contiguous samples to fit on")
    wanted = max(1, min(max_samples, total) // segment)
    chosen = np.sort(rng.choice(int(counts.sum()), min(wanted, int(counts.sum())), replace=False))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    parts = []
    for i, entry in enumerate(train):
        local = chosen[(chosen >= offsets[i]) & (chosen < offsets[i + 1])] - offsets[i]
        if local.size:
            times = (spans[i][0] + local[:, None] * segment + np.arange(segment)).ravel()
            parts.append(np.asarray(entry.session.data[:, times], np.float64))
    described = split_digest(train, catalog.sfreq)
    facts = {
        "train_sha256": described["sha256"],
        "train_sessions": described["sessions"],
        "train_seconds": described["seconds"],
        "split": config.model_dump(mode="json"),
        "samples": int(chosen.size * segment),
        "n_channels": int(parts[0].shape[0]),
        "ch_names": list(orders.pop()),
    }
    return np.concatenate(parts, axis=1), facts


def fit_tokenizer(
    name: str,
    params: Mapping[str, Any] | None,
    roots: Sequence[str | Path],
    out_dir: str | Path,
    *,
    split: Any = None,
    max_samples: int = 1_000_000,
    seed: int = 0,
) -> Any:
    """Fit the tokenizer ``name`` on the training split of ``roots`` and save it to
    ``out_dir``; returns the :class:`~ephys_tokenizers.artifact.TokenizerArtifact`.

    Tokenizers without anything to fit (``mulaw``) are saved as configured. Tokenizers that
    learn by gradient descent are trained with ``ephys train`` instead.
    """
    from ephys_core.plugins import get_registry
    from ephys_tokenizers.artifact import save_tokenizer

    tokenizer = get_registry("tokenizers").create(name, dict(params or {}))
    fitted_on: dict[str, Any] = {}
    if getattr(tokenizer, "requires_fit", False):
        fit = getattr(tokenizer, "fit", None)
        if not callable(fit):
            raise ConfigError(
                f"tokenizer {name} learns by gradient descent; train it with `ephys train`"
            )
        # tokenizers that learn from runs of samples (bpe) say how long a run they need
        segment = int(getattr(tokenizer, "fit_segment", 1))
        sample, fitted_on = training_sample(roots, split, max_samples, seed, segment)
        if segment > 1:
            fitted_on["segment"] = segment
        fit(sample)
        logger.info(
            "fitted %s on %d samples of %d training session(s)",
            name,
            fitted_on["samples"],
            fitted_on["train_sessions"],
        )
    return save_tokenizer(tokenizer, name, out_dir, fitted_on)


def _is_done(out: Path, source: Session, identity: str) -> bool:
    folder = session_dir(out, source.name)
    if not (folder / "meta.json").is_file():
        return False
    try:
        meta = Session.open(folder).meta
    except DatasetFormatError:
        return False
    entry = tokenizer_entry(meta) or {}
    return entry.get("identity") == identity and entry.get("source_meta_sha256") == source.digest


def _encode_signal(tokenizer: Any, data: np.ndarray) -> np.ndarray:
    """``(C, T)`` signal -> ``(C', T')`` codes, in blocks for sample-wise tokenizers."""
    if getattr(tokenizer, "samplewise", False) and data.shape[1] > BLOCK:
        parts = [
            np.asarray(tokenizer.encode(np.asarray(data[:, s : s + BLOCK], dtype=np.float64)))
            for s in range(0, data.shape[1], BLOCK)
        ]
        return np.concatenate(parts, axis=1)
    codes = np.asarray(tokenizer.encode(np.asarray(data, dtype=np.float32)[None]))[0]
    return codes


def _code_dtype(codes: np.ndarray, vocab_size: int) -> np.ndarray:
    return codes.astype(np.min_scalar_type(max(vocab_size - 1, 0)), copy=False)


def _check_tokenizer_folder(out: Path, artifact: Any) -> None:
    """Copy the tokenizer into ``out`` or check that the one there is the same."""
    from ephys_tokenizers.artifact import load_tokenizer, save_tokenizer

    target = out / TOKENIZER_FOLDER
    if target.exists():
        there = load_tokenizer(target)
        if there.identity != artifact.identity:
            raise ConfigError(
                f"out: {out} holds codes of tokenizer {there.name} ({there.identity}), not "
                f"{artifact.name} ({artifact.identity}); encode into another folder"
            )
        return
    save_tokenizer(artifact.tokenizer, artifact.name, target, artifact.fitted_on)


def encode_dataset(
    tokenizer: Any,
    roots: Sequence[str | Path],
    out_dir: str | Path,
    *,
    on_event: Event | None = None,
) -> EncodeSummary:
    """Encode every session of ``roots`` with a tokenizer into the code dataset ``out_dir``.

    Parameters
    ----------
    tokenizer
        A :class:`~ephys_tokenizers.artifact.TokenizerArtifact` (from ``load_tokenizer`` or
        ``save_tokenizer``).
    roots
        Prepared datasets of signals (``ephys preprocess``).
    out_dir
        The code dataset to write (created; resumed if it holds codes of this tokenizer).
    on_event
        Called with ``("plan", {"total", "skipped"})`` and ``("session", name)`` for progress.

    Raises
    ------
    ConfigError
        A root holds codes already, ``out_dir`` holds another tokenizer's codes, or a
        session's channels do not fit the tokenizer.
    """
    notify = on_event or (lambda kind, payload: None)
    out = Path(out_dir)
    sessions = _sessions(roots)
    coded = [s.name for s in sessions if np.issubdtype(np.dtype(s.meta["dtype"]), np.integer)]
    if coded:
        raise ConfigError(f"data: sessions {coded[:3]} hold codes already; encode signals")
    if any(Path(r).resolve() == out.resolve() for r in roots):
        raise ConfigError("out: write the codes to a new folder, not into the data")
    out.mkdir(parents=True, exist_ok=True)
    described = tokenizer.describe()
    summary = EncodeSummary(out, described)
    started = time.perf_counter()
    with folder_lock(out) as locked:
        if locked:
            clean_leftovers(out)
        _check_tokenizer_folder(out, tokenizer)
        todo = [s for s in sessions if not _is_done(out, s, tokenizer.identity)]
        summary.skipped = sorted({s.name for s in sessions} - {s.name for s in todo})
        notify("plan", {"total": len(sessions), "skipped": len(summary.skipped)})
        for source in todo:
            _encode_session(tokenizer, source, out)
            summary.done.append(source.name)
            summary.samples += source.n_times
            notify("session", source.name)
        summary.manifest = write_manifest(out, {"tokenizer": described})
    summary.seconds = time.perf_counter() - started
    logger.info(
        "encoded %d session(s) (%d already done) with %s %s into %s",
        len(summary.done),
        len(summary.skipped),
        tokenizer.name,
        tokenizer.identity,
        out,
    )
    return summary


def montage_rows(tokenizer: Any, ch_names: Sequence[str], what: str) -> list[int] | None:
    """Rows of channels ``ch_names`` that a tokenizer of a fixed montage (one with
    ``ch_names``) takes, in its order; ``None`` when it takes them all as they are.

    Raises
    ------
    ConfigError
        ``what`` (a session, the data) lacks some of the montage's channels.
    """
    wanted = getattr(tokenizer, "ch_names", None)
    names = list(ch_names)
    if not wanted or list(wanted) == names:
        return None
    missing = [n for n in wanted if n not in names]
    if missing:
        raise ConfigError(
            f"data: {what} lacks {len(missing)} channel(s) of the tokenizer's montage "
            f"(first: {missing[:3]})"
        )
    return [names.index(n) for n in wanted]


def _encode_session(artifact: Any, source: Session, out: Path) -> None:
    meta, tok = source.meta, artifact.tokenizer
    data = source.data
    rows = montage_rows(tok, source.meta["ch_names"], f"session {source.name}")
    if rows is not None:  # a tokenizer of a montage takes its channels, by name
        data = np.asarray(data[rows])
    fitted = getattr(tok, "n_channels", None) if getattr(tok, "fitted", True) else None
    if fitted is not None and fitted != data.shape[0]:
        raise ConfigError(
            f"data: session {source.name} has {meta['n_channels']} channels; the tokenizer "
            f"was fitted on {fitted}"
        )
    codes = _code_dtype(_encode_signal(tok, data), int(tok.vocab_size))
    stride = int(getattr(tok, "time_stride", 1))
    same_channels = codes.shape[0] == meta["n_channels"]
    entry = {
        "kind": "tokenizer",
        **artifact.describe(),
        "vocab_size": int(tok.vocab_size),
        "time_stride": stride,
        "source_meta_sha256": source.digest,
        "source_n_times": int(meta["n_times"]),
        "source_ch_names": list(meta["ch_names"])
        if rows is None
        else [meta["ch_names"][i] for i in rows],
    }
    fields: dict[str, Any] = dict(
        name=source.name,
        dataset=meta.get("dataset") or "",
        subject=meta.get("subject"),
        session=meta.get("session"),
        task=meta.get("task"),
        run=meta.get("run"),
        transforms=(*meta.get("transforms", []), entry),
        provenance={**(meta.get("provenance") or {}), "encoded_from": str(source.path)},
        annotations=tuple(meta.get("annotations") or ()),
    )
    if same_channels and stride == 1:
        names, types = meta["ch_names"], meta["ch_types"]
        fields.update(
            units=tuple(meta.get("units") or ("",) * len(names)),
            bads=tuple(meta.get("bads") or ()),
            **{
                k: None if meta.get(k) is None else np.asarray(meta[k])
                for k in ("pos_2d", "pos_3d", "ori_3d", "coil_x_3d")
            },
        )
        if meta.get("labels"):
            fields.update(
                labels=source.labels,
                label_names={int(k): v for k, v in meta["labels"]["names"].items()},
            )
    else:  # latent channels of a learned tokenizer: no sensors, a lower rate
        names = [f"latent{i:03d}" for i in range(codes.shape[0])]
        types = ["misc"] * len(names)
    recording = Recording.from_array(codes, float(meta["sfreq"]) / stride, names, types, **fields)
    write_session(out, recording, {})


def decode_dataset(
    root: str | Path, out_dir: str | Path, *, on_event: Event | None = None
) -> EncodeSummary:
    """Decode a code dataset back to signals (in the units the tokenizer was given), through
    the tokenizer it carries; sample-wise codes keep their sessions' channels and metadata."""
    from ephys_tokenizers.artifact import load_tokenizer

    notify = on_event or (lambda kind, payload: None)
    root, out = Path(root), Path(out_dir)
    folder = root / TOKENIZER_FOLDER
    if not folder.is_dir():
        raise ConfigError(
            f"data: {root} is not a code dataset (no {TOKENIZER_FOLDER}/); "
            "`ephys tokenizer encode` writes one"
        )
    artifact = load_tokenizer(folder)
    sessions = _sessions([root])
    summary = EncodeSummary(out, artifact.describe())
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out) as locked:
        if locked:
            clean_leftovers(out)
        notify("plan", {"total": len(sessions), "skipped": 0})
        for session in sessions:
            entry = tokenizer_entry(session.meta)
            if entry is None or entry.get("identity") != artifact.identity:
                raise ConfigError(
                    f"data: session {session.name} was not encoded by the dataset's tokenizer "
                    f"({artifact.identity})"
                )
            signal = np.asarray(artifact.tokenizer.decode(np.asarray(session.data)[None]))[0]
            meta = dict(session.meta)
            meta["transforms"] = [t for t in meta["transforms"] if t.get("kind") != "tokenizer"]
            stride = int(entry.get("time_stride", 1))
            names = (
                meta["ch_names"]
                if signal.shape[0] == meta["n_channels"] and stride == 1
                else entry.get("source_ch_names") or [f"ch{i:03d}" for i in range(len(signal))]
            )
            recording = Recording.from_array(
                signal.astype(np.float32),
                float(meta["sfreq"]) * stride,
                names,
                meta["ch_types"] if len(names) == meta["n_channels"] else "misc",
                name=session.name,
                dataset=meta.get("dataset") or "",
                subject=meta.get("subject"),
                session=meta.get("session"),
                transforms=tuple(meta["transforms"]),
                provenance={"decoded_from": str(session.path), "tokenizer": artifact.identity},
            )
            write_session(out, recording, {})
            summary.done.append(session.name)
            summary.samples += signal.shape[1]
            notify("session", session.name)
        summary.manifest = write_manifest(out, {"decoded_with": artifact.describe()})
    summary.seconds = time.perf_counter() - started
    return summary
