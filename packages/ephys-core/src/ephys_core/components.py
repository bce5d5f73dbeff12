"""Optional mixins that give components the defaults their protocols describe, and
:class:`LazyComponent`, the declaration that keeps a heavy component's import out of validation.

Components do not have to use the mixins; they only save repetition::

    from ephys_core.components import ComponentConfig, Component

    class MyLoss(Component):
        class Config(ComponentConfig):
            weight: float = Field(1.0, description="Scale of the loss.")
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Component", "ComponentConfig", "LazyComponent", "describe", "example_config_of"]


@dataclass(frozen=True)
class LazyComponent:
    """A component whose implementation is imported only when it is built.

    Validating a run configuration needs each component's ``Config``, not its implementation.
    A component whose module imports torch (seconds) can therefore be registered through a
    *declaration* in a module that imports nothing heavy::

        # my_plugin/configs.py: pydantic only
        class MyNetConfig(ComponentConfig):
            width: int = Field(64, gt=0, description="Hidden width.")

        my_net = LazyComponent("my_plugin.net:MyNet", MyNetConfig)

        # pyproject.toml
        [project.entry-points."ephys.models"]
        my_net = "my_plugin.configs:my_net"

    ``ephys config validate`` and the first checks of ``ephys train`` then validate
    ``model.params`` with ``MyNetConfig`` without importing ``my_plugin.net``; the registry
    imports the target when the component is loaded and checks that its ``Config`` is the
    declared one.

    Attributes
    ----------
    target
        ``"module:attr"`` of the component class.
    Config
        The component's configuration model (the same object as ``target``'s ``Config``).
    metadata
        Class attributes the host may read before importing ``target`` (for example a loss's
        ``metrics``); each must equal the attribute of the loaded component.
    """

    target: str
    Config: type[BaseModel]
    metadata: Mapping[str, Any] = field(default_factory=dict)


class ComponentConfig(BaseModel):
    """Base for component ``Config`` models: unknown keys are errors and values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def check_data(self, data_spec: Mapping[str, Any]) -> list[str]:
        """Why a component with this configuration cannot use the data, one line per problem.

        The training engine calls it on the model's and the loss's configuration with the
        dataset's ``data_spec()`` before any training work, so an impossible combination (a
        context shorter than the window, a token model on continuous data) fails at once.
        Nothing is wrong by default.
        """
        return []


class Component:
    """Defaults shared by every kind: an all-defaults example and no expected failures."""

    Config: ClassVar[type[BaseModel]] = ComponentConfig
    expected_failures: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> BaseModel:
        """The component's defaults, which must be a tiny, valid configuration."""
        return cls.Config()


def example_config_of(component: Any, workdir: Path | None = None) -> BaseModel:
    """Call ``component.example_config``, passing ``workdir`` only if it accepts one."""
    method = component.example_config
    try:
        accepts = "workdir" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        accepts = False
    return method(workdir=workdir) if accepts else method()


def describe(component: Any) -> str:
    """The first paragraph of a component's docstring (its one-line description)."""
    doc = inspect.getdoc(component) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()
