"""Registries: discovery from metadata, lazy cached loading, errors that help."""

from __future__ import annotations

import logging
import sys

import pytest
from fake_plugins import BROKEN_IMPORT, GOOD_MODEL

from ephys_core import get_registry, register
from ephys_core.errors import (
    ConfigError,
    DuplicateComponentError,
    PluginLoadError,
    UnknownComponentError,
)

MODELS = "ephys.models"


def test_listing_reads_metadata_without_importing(fake_dist):
    fake_dist.add(
        "ephys-fake",
        entry_points={MODELS: {"net": "fake_pkg.models:Net"}},
        files={"fake_pkg/__init__.py": "", "fake_pkg/models.py": GOOD_MODEL},
    )
    registry = get_registry("models")
    assert registry.names() == ["net"]
    assert "net" in registry
    entry = registry.info("net")
    assert (entry.distribution, entry.version, entry.status) == ("ephys-fake", "1.0", "not loaded")
    assert "fake_pkg.models" not in sys.modules


def test_load_imports_once_and_caches(fake_dist):
    fake_dist.add(
        "ephys-fake",
        entry_points={MODELS: {"net": "fake_pkg.models:Net"}},
        files={"fake_pkg/__init__.py": "", "fake_pkg/models.py": GOOD_MODEL},
    )
    registry = get_registry("models")
    first = registry.load("net")
    assert registry.load("net") is first
    assert registry.info("net").status == "ok"
    assert sys.modules["fake_pkg.models"].Net is first


def test_names_filters_with_patterns(ephys_registry):
    for name in ("gpt_small", "gpt_large", "wavenet"):
        ephys_registry.register("models", name, "json:dumps")
    registry = get_registry("models")
    assert registry.names("gpt*") == ["gpt_large", "gpt_small"]
    assert registry.names(exclude="gpt*") == ["wavenet"]
    assert list(registry) == ["gpt_large", "gpt_small", "wavenet"]


def test_create_validates_params_and_ignores_none_overrides(fake_dist):
    fake_dist.add(
        "ephys-fake",
        entry_points={MODELS: {"net": "fake_pkg.models:Net"}},
        files={"fake_pkg/__init__.py": "", "fake_pkg/models.py": GOOD_MODEL},
    )
    registry = get_registry("models")
    net = registry.create("net", {"width": 4}, depth=None)
    assert (net.config.width, net.config.depth) == (4, 2)
    net = registry.create("net", depth=5)
    assert net.config.depth == 5
    with pytest.raises(ConfigError, match=r"model\.params\.width: Input should be greater than 0"):
        registry.validate_params("net", {"width": 0}, prefix="model.params")


def test_unknown_name_suggests_close_matches(ephys_registry):
    ephys_registry.register("models", "wavenet", "json:dumps")
    with pytest.raises(UnknownComponentError) as err:
        get_registry("models").load("wavnet")
    message = str(err.value)
    assert "did you mean 'wavenet'" in message
    assert "ephys plugins --kind models" in message


def test_same_name_from_two_distributions_names_both(fake_dist):
    files = {
        "fake_a/__init__.py": "",
        "fake_a/m.py": GOOD_MODEL,
        "fake_b/__init__.py": "",
        "fake_b/m.py": GOOD_MODEL,
    }
    fake_dist.add("ephys-a", entry_points={MODELS: {"net": "fake_a.m:Net"}}, files=files)
    fake_dist.add("ephys-b", entry_points={MODELS: {"net": "fake_b.m:Net"}})
    registry = get_registry("models")
    entry = registry.info("net")
    assert entry.status == "error" and "ephys-a" in entry.error and "ephys-b" in entry.error
    with pytest.raises(DuplicateComponentError) as err:
        registry.load("net")
    assert "ephys-a 1.0 (fake_a.m:Net)" in str(err.value)
    assert "ephys-b 1.0 (fake_b.m:Net)" in str(err.value)


def test_programmatic_registration_cannot_silently_shadow(fake_dist):
    fake_dist.add(
        "ephys-fake",
        entry_points={MODELS: {"net": "fake_pkg.models:Net"}},
        files={"fake_pkg/__init__.py": "", "fake_pkg/models.py": GOOD_MODEL},
    )
    with pytest.raises(DuplicateComponentError, match="ephys-fake 1.0"):
        register("models", "net", "fake_pkg.models:Net")
    undo = register("models", "net", "fake_pkg.models:Net", replace=True)
    assert get_registry("models").info("net").origin == "registered"
    undo()
    assert get_registry("models").info("net").distribution == "ephys-fake"


def test_registering_an_object_checks_required_attributes(ephys_registry):
    class NotAModel:
        pass

    with pytest.raises(PluginLoadError, match="lacks Config, example_config, causal"):
        ephys_registry.register("models", "bad", NotAModel)
    assert "bad" not in get_registry("models")


def test_unregister_removes_a_registration(ephys_registry):
    undo = ephys_registry.register("losses", "mine", "json:dumps")
    assert "mine" in get_registry("losses")
    undo()
    assert "mine" not in get_registry("losses")


def test_broken_plugin_is_recorded_and_raised_with_its_cause_on_request(fake_dist):
    fake_dist.add(
        "ephys-broken",
        "2.1",
        entry_points={MODELS: {"bad": "broken_pkg:Net"}},
        files={"broken_pkg/__init__.py": BROKEN_IMPORT},
    )
    registry = get_registry("models")
    assert registry.info("bad").status == "not loaded"
    with pytest.raises(PluginLoadError) as err:
        registry.load("bad")
    message = str(err.value)
    assert "ephys-broken 2.1" in message and "libfoo.so.1" in message
    assert "EPHYS_DISABLE_PLUGINS=ephys-broken" in message
    assert isinstance(err.value.__cause__, ImportError)
    assert registry.info("bad").status == "error"
    with pytest.raises(PluginLoadError) as again:  # asked again: same real cause
        registry.load("bad")
    assert isinstance(again.value.__cause__, ImportError)


def test_load_all_warns_once_per_distribution_and_continues(fake_dist, caplog):
    fake_dist.add(
        "ephys-broken",
        entry_points={MODELS: {"bad1": "broken_pkg:A", "bad2": "broken_pkg:B"}},
        files={"broken_pkg/__init__.py": BROKEN_IMPORT},
    )
    fake_dist.add(
        "ephys-fake",
        entry_points={MODELS: {"net": "fake_pkg.models:Net"}},
        files={"fake_pkg/__init__.py": "", "fake_pkg/models.py": GOOD_MODEL},
    )
    with caplog.at_level(logging.WARNING, logger="ephys"):
        loaded = get_registry("models").load_all()
        get_registry("models").load_all()
    assert list(loaded) == ["net"]
    warnings = [r for r in caplog.records if "ephys-broken" in r.getMessage()]
    assert len(warnings) == 1
    assert "EPHYS_DISABLE_PLUGINS=ephys-broken" in warnings[0].getMessage()
    assert set(get_registry("models").errors()) == {"bad1", "bad2"}


def test_strict_mode_raises_at_once(fake_dist, monkeypatch):
    from ephys_core._policy import PluginPolicy

    fake_dist.host.policy = PluginPolicy(strict=True)
    fake_dist.add(
        "ephys-broken",
        entry_points={MODELS: {"bad": "broken_pkg:Net"}},
        files={"broken_pkg/__init__.py": BROKEN_IMPORT},
    )
    with pytest.raises(PluginLoadError, match="libfoo"):
        get_registry("models").load_all()


def test_policy_is_read_from_the_environment(monkeypatch):
    from ephys_core._policy import PluginPolicy

    monkeypatch.setenv("EPHYS_STRICT_PLUGINS", "1")
    monkeypatch.setenv("EPHYS_DISABLE_PLUGINS", "Ephys_Broken, models:net")
    monkeypatch.setenv("EPHYS_LOAD_PLUGINS", "ephys-models")
    policy = PluginPolicy.from_env()
    assert policy.strict
    assert not policy.allows("ephys-broken", "models", "x")
    assert not policy.allows("ephys-models", "models", "net")
    assert policy.allows("ephys-models", "models", "gpt2meg")
    assert not policy.allows("ephys-other", "models", "gpt2meg")  # not on the allowlist


def test_disabled_distribution_is_not_discovered(fake_dist):
    from ephys_core._policy import PluginPolicy

    fake_dist.host.policy = PluginPolicy(disabled=frozenset({"ephys-broken"}))
    fake_dist.add(
        "ephys-broken",
        entry_points={MODELS: {"bad": "broken_pkg:Net"}},
        files={"broken_pkg/__init__.py": BROKEN_IMPORT},
    )
    assert "bad" not in get_registry("models")


def test_entry_point_lacking_required_attributes_is_a_load_error(fake_dist):
    fake_dist.add("ephys-fake", entry_points={MODELS: {"dumps": "json:dumps"}})
    with pytest.raises(PluginLoadError, match="lacks Config"):
        get_registry("models").load("dumps")


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(UnknownComponentError, match="did you mean 'models'"):
        get_registry("modles")


LAZY_DECLARATION = """
from pydantic import BaseModel, Field
from ephys_core.components import LazyComponent

class NetConfig(BaseModel):
    model_config = {"extra": "forbid", "frozen": True}
    width: int = Field(8, gt=0, description="Width.")

net = LazyComponent("lazy_pkg.heavy:Net", NetConfig, metadata={"causal": True})
mismatched = LazyComponent("lazy_pkg.heavy:Net", NetConfig, metadata={"causal": False})
"""

LAZY_IMPLEMENTATION = '''
from typing import ClassVar
from lazy_pkg.light import NetConfig

class Net:
    """The heavy implementation."""
    Config: ClassVar = NetConfig
    causal: ClassVar[bool] = True

    def __init__(self, config):
        self.config = config

    @classmethod
    def example_config(cls, workdir=None):
        return cls.Config()

    def example_input(self, batch_size=2):
        return None

    def output_shape(self, inputs):
        return ()
'''


@pytest.fixture
def lazy_dist(fake_dist):
    fake_dist.add(
        "ephys-lazy",
        entry_points={
            MODELS: {"net": "lazy_pkg.light:net", "mismatched": "lazy_pkg.light:mismatched"}
        },
        files={
            "lazy_pkg/__init__.py": "",
            "lazy_pkg/light.py": LAZY_DECLARATION,
            "lazy_pkg/heavy.py": LAZY_IMPLEMENTATION,
        },
    )
    return fake_dist


def test_a_lazy_declaration_validates_without_importing_the_implementation(lazy_dist):
    registry = get_registry("models")
    config = registry.validate_params("net", {"width": 3})
    assert config.width == 3
    assert registry.metadata("net", "causal") is True
    assert "lazy_pkg.light" in sys.modules and "lazy_pkg.heavy" not in sys.modules
    with pytest.raises(ConfigError, match=r"model\.params\.width"):
        registry.validate_params("net", {"width": "wide"}, prefix="model.params")
    assert "lazy_pkg.heavy" not in sys.modules
    net = registry.create("net", config)
    assert type(net).__module__ == "lazy_pkg.heavy" and net.config is config
    assert registry.load("net") is sys.modules["lazy_pkg.heavy"].Net


def test_a_declaration_that_disagrees_with_its_implementation_fails_to_load(lazy_dist):
    with pytest.raises(PluginLoadError, match="causal is True, declared False"):
        get_registry("models").load("mismatched")


def test_preflight_follows_a_lazy_declaration(fake_dist):
    fake_dist.add(
        "ephys-lazy-broken",
        entry_points={MODELS: {"net": "lazy_broken.light:net"}},
        files={
            "lazy_broken/__init__.py": "",
            "lazy_broken/light.py": LAZY_DECLARATION.replace("lazy_pkg.heavy", "lazy_broken.gone"),
        },
    )
    registry = get_registry("models")
    registry.preflight()
    assert registry.info("net").status == "error"
    assert "lazy_broken.gone" in registry.info("net").error


def test_a_deprecated_alias_loads_the_renamed_component_with_a_warning(fake_dist, caplog):
    fake_dist.add(
        "ephys-fake",
        entry_points={
            MODELS: {"net": "fake_pkg.models:Net"},
            f"{MODELS}.aliases": {"old_net": "net"},
        },
        files={"fake_pkg/__init__.py": "", "fake_pkg/models.py": GOOD_MODEL},
    )
    registry = get_registry("models")
    assert registry.names() == ["net"] and "old_net" in registry
    assert [(a.name, a.target) for a in registry.aliases()] == [("old_net", "net")]
    with caplog.at_level(logging.WARNING, logger="ephys"):
        assert registry.load("old_net") is registry.load("net")
        registry.load("old_net")
    warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert warnings == [
        "model 'old_net' is a deprecated name of 'net' (declared by ephys-fake); use 'net'"
    ]
    assert registry.canonical("old_net") == "net"
    with pytest.raises(UnknownComponentError, match="did you mean 'old_net'"):
        registry.load("old_nett")


def test_a_resolved_configuration_records_the_current_name(fake_dist):
    from ephys_core.config import load_config

    fake_dist.add(
        "ephys-fake",
        entry_points={
            MODELS: {"net": "fake_pkg.models:Net"},
            f"{MODELS}.aliases": {"old_net": "net"},
        },
        files={"fake_pkg/__init__.py": "", "fake_pkg/models.py": GOOD_MODEL},
    )
    config = load_config({"model": {"name": "old_net", "params": {"width": 2}}}).resolve()
    assert config.to_data()["model"] == {"name": "net", "params": {"width": 2, "depth": 2}}


def test_programmatic_aliases(ephys_registry):
    ephys_registry.register("models", "wavenet", "json:dumps")
    registry = get_registry("models")
    undo = registry.register_alias("wave", "wavenet")
    assert registry.info("wave") is registry.info("wavenet")
    with pytest.raises(DuplicateComponentError):
        registry.register_alias("wavenet", "wave")
    undo()
    assert "wave" not in registry
