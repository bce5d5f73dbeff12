"""The sessions of one or more prepared dataset roots, as one collection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger
from ephys_data.format import PreparedDataset, Session, count_non_finite, non_finite_samples

__all__ = ["Catalog", "SessionEntry"]

logger = get_logger(__name__)


@dataclass(frozen=True)
class SessionEntry:
    """One session of the catalog.

    Attributes
    ----------
    key
        Unique identifier ``<dataset>/<session name>``.
    dataset
        Label of the root it comes from (its ``dataset`` field, or the root folder name).
    subject
        Subject identifier, unique across data sets (``<dataset>/<subject>``); sessions
        without one count as their own subject.
    session
        The opened session.
    start, stop
        The samples of the session that belong to this entry (all by default; the ``time``
        split strategy gives each split a contiguous part).
    """

    key: str
    dataset: str
    subject: str
    session: Session
    start: int = 0
    stop: int | None = None

    @property
    def span(self) -> tuple[int, int]:
        """``(start, stop)`` sample bounds within the session."""
        return self.start, self.session.n_times if self.stop is None else self.stop


class Catalog:
    """All sessions of the given prepared roots.

    Parameters
    ----------
    roots
        Prepared dataset folders (written by ``ephys preprocess``).

    Raises
    ------
    ConfigError
        If a root is not a prepared dataset, roots disagree on the sampling frequency or on
        whether they hold codes or signals, or there are no sessions.
    DatasetFormatError
        A session's files are missing, truncated or disagree with its sidecar (every session's
        array headers are read when the catalog opens; the samples are not).
    """

    def __init__(self, roots: Sequence[str | Path]) -> None:
        if not roots:
            raise ConfigError("roots: give at least one prepared dataset folder")
        self.entries: list[SessionEntry] = []
        labels_seen: dict[str, int] = {}
        for root in roots:
            dataset = PreparedDataset(root)
            fallback = Path(root).name
            for session in dataset.sessions():
                # open the memory maps now: a truncated or empty file is refused here, with
                # its name, and not by a data loader in the middle of training
                session.data  # noqa: B018 - reads the array header only
                if session.meta.get("labels"):
                    session.labels  # noqa: B018
                label = session.meta.get("dataset") or fallback
                labels_seen[label] = labels_seen.get(label, 0)
                subject = session.meta.get("subject") or f"session:{session.name}"
                self.entries.append(
                    SessionEntry(f"{label}/{session.name}", label, f"{label}/{subject}", session)
                )
        if not self.entries:
            raise ConfigError(f"roots: no sessions in {[str(r) for r in roots]}")
        keys = [e.key for e in self.entries]
        if len(set(keys)) != len(keys):
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            raise ConfigError(f"roots: the same session appears twice: {dupes[:5]}")
        rates = {e.session.sfreq for e in self.entries}
        if len(rates) > 1:
            raise ConfigError(
                f"roots: sessions have different sampling frequencies {sorted(rates)} Hz; "
                "resample them to one rate when preprocessing"
            )
        kinds = {np.issubdtype(np.dtype(e.session.meta["dtype"]), np.integer) for e in self.entries}
        if len(kinds) > 1:
            raise ConfigError("roots: some datasets hold mu-law codes and others signals")
        self.sfreq = rates.pop()
        self.is_codes = kinds.pop()
        self._non_finite: dict[str, int] | None = None
        self._bad_samples: dict[str, np.ndarray] = {}

    def non_finite(self) -> dict[str, int]:
        """Session key -> number of NaN or infinite samples, for the sessions that have any.

        Read from each sidecar; sessions written before the count was recorded
        (``ephys-session/1``) are scanned once (memory-mapped, in blocks). Sessions whose
        sidecar says they are finite are not read.
        """
        if self._non_finite is None:
            counts: dict[str, int] = {}
            scanned = 0
            for entry in self.entries:
                recorded = entry.session.non_finite
                if recorded is None:
                    scanned += 1
                    recorded = count_non_finite(entry.session.data)
                if recorded:
                    counts[entry.key] = recorded
            if scanned:
                logger.info("scanned %d session(s) without a non-finite count", scanned)
            self._non_finite = counts
        return self._non_finite

    def bad_samples(self, key: str) -> np.ndarray | None:
        """``(T,)`` bool: samples of session ``key`` where any channel is NaN or inf, or
        ``None`` when it has none (computed once per session, only for those that have)."""
        if key not in self.non_finite():
            return None
        if key not in self._bad_samples:
            entry = next(e for e in self.entries if e.key == key)
            self._bad_samples[key] = non_finite_samples(entry.session.data)
        return self._bad_samples[key]

    @property
    def datasets(self) -> list[str]:
        """Data-set labels, in order of appearance."""
        return list(dict.fromkeys(e.dataset for e in self.entries))
