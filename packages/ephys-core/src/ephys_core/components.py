"""Optional mixins that give components the defaults their protocols describe.

Components do not have to use these; they only save repetition::

    from ephys_core.components import ComponentConfig, Component

    class MyLoss(Component):
        class Config(ComponentConfig):
            weight: float = Field(1.0, description="Scale of the loss.")
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Component", "ComponentConfig", "describe", "example_config_of"]


class ComponentConfig(BaseModel):
    """Base for component ``Config`` models: unknown keys are errors and values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


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
