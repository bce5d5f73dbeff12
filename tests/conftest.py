"""Settings shared by the whole test suite."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# nothing may be downloaded while tests run
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
# keep the preflight cache of `ephys plugins` out of the user's home during tests
os.environ["EPHYS_CACHE_DIR"] = tempfile.mkdtemp(prefix="ephys-test-cache-")

REPO = Path(__file__).resolve().parents[1]
RECORDINGS = REPO.parent / "shared" / "data" / "recordings"


@pytest.fixture(autouse=True)
def _restore_ephys_logging() -> Iterator[None]:
    """Tests that run the CLI configure the ``ephys`` logger; put it back afterwards."""
    logger = logging.getLogger("ephys")
    state = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = state


@pytest.fixture(autouse=True)
def _no_plugin_policy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's EPHYS_* settings must not change what the tests see."""
    for var in (
        "EPHYS_STRICT_PLUGINS",
        "EPHYS_DISABLE_PLUGINS",
        "EPHYS_LOAD_PLUGINS",
        "EPHYS_TRACE_PLUGINS",
        "EPHYS_DEBUG",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def recordings() -> Path:
    """The folder of short real recordings; tests using it skip when it is absent."""
    if not RECORDINGS.is_dir():
        pytest.skip(f"real recordings not available at {RECORDINGS}")
    return RECORDINGS
