"""Splits: reproducible, by session, subject or data set, with a leakage guard."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ephys_core.errors import ConfigError
from ephys_data.datasets.catalog import SessionEntry
from ephys_data.datasets.splits import SplitConfig, leaking_subjects, split_sessions


def entries(n_subjects=10, sessions=2, dataset="d"):
    return [
        SessionEntry(f"{dataset}/s{s}-{k}", dataset, f"{dataset}/s{s}", None)
        for s in range(n_subjects)
        for k in range(sessions)
    ]


def keys(split):
    return {s: [e.key for e in v] for s, v in split.items()}


def test_same_seed_same_split_other_seed_other_split():
    cfg = SplitConfig(strategy="subject", val=0.2, test=0.2, seed=3)
    assert keys(split_sessions(entries(), cfg)) == keys(split_sessions(entries(), cfg))
    other = SplitConfig(strategy="subject", val=0.2, test=0.2, seed=4)
    assert keys(split_sessions(entries(), cfg)) != keys(split_sessions(entries(), other))


def test_subject_split_keeps_subjects_whole():
    split = split_sessions(entries(), SplitConfig(strategy="subject", val=0.2, test=0.2))
    assert leaking_subjects(split) == {}
    assert [len(split[s]) for s in ("train", "val", "test")] == [12, 4, 4]


def test_session_split_reports_subjects_in_two_splits(caplog):
    with caplog.at_level(logging.WARNING, logger="ephys"):
        split = split_sessions(entries(), SplitConfig(strategy="session", val=0.3, test=0.3))
    leaks = leaking_subjects(split)
    assert leaks
    assert any("more than one split" in r.getMessage() for r in caplog.records)


def test_dataset_holdout():
    both = entries(dataset="a") + entries(6, dataset="b")
    split = split_sessions(both, SplitConfig(strategy="dataset", holdout="b"))
    assert {e.dataset for e in split["train"]} == {"a"}
    assert {e.dataset for e in split["val"] + split["test"]} == {"b"}
    assert split["val"] and split["test"] and leaking_subjects(split) == {}
    with pytest.raises(ConfigError, match="no data set 'c'"):
        split_sessions(both, SplitConfig(strategy="dataset", holdout="c"))


def test_every_split_is_non_empty_for_small_data():
    split = split_sessions(entries(3, 1), SplitConfig(strategy="subject", val=0.1, test=0.1))
    assert all(len(v) == 1 for v in split.values())


def test_invalid_configurations():
    with pytest.raises(ValueError, match="leave something to train"):
        SplitConfig(val=0.5, test=0.5)
    with pytest.raises(ValueError, match="needs `holdout`"):
        SplitConfig(strategy="dataset")


def test_time_split_cuts_each_session_in_order(tmp_path):
    from ephys_core import get_registry
    from ephys_data.synthetic import write_example_dataset

    root = write_example_dataset(tmp_path / "p", n_subjects=1, seconds=10)
    builder = get_registry("datasets").create(
        "continuous_next_step",
        {
            "roots": [str(root)],
            "window_seconds": 0.5,
            "split": {"strategy": "time", "val": 0.2, "test": 0.2},
        },
    )
    spans = {s: [e.span for e in builder.splits[s]] for s in ("train", "val", "test")}
    assert spans == {"train": [(0, 600)], "val": [(600, 800)], "test": [(800, 1000)]}
    val = builder.build("val")
    first = val.window(0)[0]
    data = builder.catalog.entries[0].session.data
    np.testing.assert_array_equal(first, data[:, 600:651])
    assert 600 + int(val.index.start[-1]) + 51 <= 800  # windows stay inside their part
    assert builder.data_spec()["leaking_subjects"] == {}
