"""The shared conformance suite on every preprocessing stage of ephys-data."""

import pytest

from ephys_core.testing import conformance_tests

test_conformance = conformance_tests("preprocessing", distribution="ephys-data")


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread: the MEG stages run many small SVDs, and on a small shared machine
    OpenBLAS threads spinning against other processes slow them down many times over."""
    import scipy.linalg  # noqa: F401 - load scipy's BLAS so that the limit covers it

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
