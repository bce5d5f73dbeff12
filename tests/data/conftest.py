"""Fixtures of the ephys-data tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread: the stage tests run many small SVDs, and on a small shared machine
    OpenBLAS threads spinning against other processes slow them down many times over."""
    import scipy.linalg  # noqa: F401 - load scipy's BLAS so that the limit covers it

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
