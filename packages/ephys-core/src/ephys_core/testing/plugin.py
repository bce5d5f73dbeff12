"""pytest plugin of ephys-core (registered under ``pytest11``): fixtures for plugin tests.

``ephys_registry``
    Registries that see no installed plugin, only what the test registers
    (:class:`~ephys_core.testing._fixtures.IsolatedPlugins`).
``fake_dist``
    Writes fake installed distributions with entry points into a temporary folder and makes
    discovery see only those (:class:`~ephys_core.testing._fixtures.FakeDists`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ephys_core.testing._fixtures import FakeDists, IsolatedPlugins


@pytest.fixture
def ephys_registry() -> Iterator[IsolatedPlugins]:
    """Isolated registries and hooks for the duration of one test."""
    from ephys_core.plugins import use_host
    from ephys_core.testing._fixtures import IsolatedPlugins, isolated_host

    with use_host(isolated_host()) as host:
        yield IsolatedPlugins(host)


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDists]:
    """Fake installed distributions; discovery sees only these during the test."""
    from ephys_core.plugins import use_host
    from ephys_core.testing._fixtures import FakeDists, fake_site_host

    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    with use_host(fake_site_host(site)) as host:
        dists = FakeDists(site, host)
        try:
            yield dists
        finally:
            dists.cleanup()
