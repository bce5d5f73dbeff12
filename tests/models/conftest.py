"""Fixtures shared by the training-engine tests."""

from __future__ import annotations

import pytest

from ephys_data.synthetic import write_example_dataset


@pytest.fixture(scope="session")
def signal_root(tmp_path_factory):
    """A small prepared dataset of signals (5 one-session subjects, 12 s at 100 Hz)."""
    return write_example_dataset(
        tmp_path_factory.mktemp("engine") / "prepared", seconds=12, labels=True
    )
