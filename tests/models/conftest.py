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


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of tiny convolutional models: they are fastest on one,
    and on a busy small machine more threads only contend."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
