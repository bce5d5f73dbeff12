"""Reproducible train/validation/test splits by session, by subject or by data set.

``session``
    Sessions are shuffled per data set and cut by the ratios. A subject may then appear in
    several splits; the leakage guard reports it.
``subject``
    Subjects are shuffled per data set and cut by the ratios; all sessions of a subject land
    in one split.
``dataset``
    One data set (``holdout``) is held out: its subjects are split half into validation and
    half into test; every other data set trains.
``time``
    Every session is cut in time: its first part trains, the next validates, the last tests
    (for single-recording data; subjects are in every split by design, so no leak is reported).

The same seed and sessions always give the same split.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from ephys_core.components import ComponentConfig
from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger
from ephys_data.datasets.catalog import SessionEntry

__all__ = ["SplitConfig", "leaking_subjects", "split_sessions"]

logger = get_logger(__name__)
SPLITS = ("train", "val", "test")


class SplitConfig(ComponentConfig):
    """How sessions are divided between training, validation and test."""

    strategy: Literal["session", "subject", "dataset", "time"] = Field(
        "subject",
        description="Unit kept whole: `session`, `subject`, a held-out `dataset`, or `time` "
        "(each session cut into consecutive train/val/test parts).",
    )
    val: float = Field(0.1, ge=0, lt=1, description="Fraction for validation.")
    test: float = Field(0.1, ge=0, lt=1, description="Fraction for test.")
    seed: int = Field(42, description="Seed of the shuffle.")
    holdout: str | None = Field(None, description="Data set held out (strategy `dataset`).")

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.val + self.test >= 1:
            raise ValueError("val + test must leave something to train on")
        if self.strategy == "dataset" and not self.holdout:
            raise ValueError("strategy `dataset` needs `holdout`, the data set to hold out")
        return self


def _cut(units: list[str], val: float, test: float) -> dict[str, list[str]]:
    n = len(units)
    n_val, n_test = round(n * val), round(n * test)
    if n >= 3:  # keep every split non-empty when there is enough data
        n_val, n_test = max(n_val, 1 if val > 0 else 0), max(n_test, 1 if test > 0 else 0)
    n_val = min(n_val, max(n - 1, 0))
    n_test = min(n_test, max(n - 1 - n_val, 0))
    return {
        "val": units[:n_val],
        "test": units[n_val : n_val + n_test],
        "train": units[n_val + n_test :],
    }


def split_sessions(
    entries: Sequence[SessionEntry], config: SplitConfig
) -> dict[str, list[SessionEntry]]:
    """Assign each session to ``train``, ``val`` or ``test``."""
    if config.strategy == "time":
        return _split_in_time(entries, config)
    rng = random.Random(config.seed)
    out: dict[str, list[SessionEntry]] = {s: [] for s in SPLITS}
    by_dataset: dict[str, list[SessionEntry]] = defaultdict(list)
    for entry in entries:
        by_dataset[entry.dataset].append(entry)
    if config.strategy == "dataset" and config.holdout not in by_dataset:
        raise ConfigError(
            f"split.holdout: no data set {config.holdout!r}; have {sorted(by_dataset)}"
        )
    for dataset in sorted(by_dataset):
        members = by_dataset[dataset]
        unit_of = (lambda e: e.key) if config.strategy == "session" else (lambda e: e.subject)
        units = sorted({unit_of(e) for e in members})
        rng.shuffle(units)
        if config.strategy == "dataset":
            if dataset == config.holdout:
                half = (len(units) + 1) // 2
                assignment = {"val": units[:half], "test": units[half:], "train": []}
            else:
                assignment = {"train": units, "val": [], "test": []}
        else:
            assignment = _cut(units, config.val, config.test)
        split_of = {unit: split for split, group in assignment.items() for unit in group}
        for entry in members:
            out[split_of[unit_of(entry)]].append(entry)
    for split in SPLITS:
        out[split].sort(key=lambda e: e.key)
    leaks = leaking_subjects(out)
    if leaks:
        logger.warning(
            "%d subject(s) appear in more than one split (strategy %r): %s",
            len(leaks),
            config.strategy,
            ", ".join(sorted(leaks)[:10]),
        )
    return out


def _split_in_time(
    entries: Sequence[SessionEntry], config: SplitConfig
) -> dict[str, list[SessionEntry]]:
    from dataclasses import replace

    out: dict[str, list[SessionEntry]] = {s: [] for s in SPLITS}
    for entry in sorted(entries, key=lambda e: e.key):
        n = entry.session.n_times
        cut_val = int(round(n * (1 - config.val - config.test)))
        cut_test = int(round(n * (1 - config.test)))
        for split, (start, stop) in zip(
            SPLITS, ((0, cut_val), (cut_val, cut_test), (cut_test, n)), strict=True
        ):
            if stop > start:
                out[split].append(replace(entry, start=start, stop=stop))
    return out


def leaking_subjects(splits: dict[str, list[SessionEntry]]) -> dict[str, list[str]]:
    """Subjects present in more than one split, with the splits they are in."""
    where: dict[str, set[str]] = defaultdict(set)
    for split, entries in splits.items():
        for entry in entries:
            where[entry.subject].add(split)
    return {subject: sorted(s) for subject, s in where.items() if len(s) > 1}
