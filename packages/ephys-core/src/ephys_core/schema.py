"""JSON Schema of run configurations, specialised to the installed components.

Each component reference becomes a union discriminated by ``name`` whose ``params`` follow that
component's ``Config``, so an editor can complete and check parameters. Building it imports
every component (broken ones are left out and warned about).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from ephys_core.config import (
    ComponentSpec,
    DataSection,
    EvaluationSection,
    PreprocessSection,
    RunConfig,
    Section,
)
from ephys_core.kinds import KINDS
from ephys_core.plugins import get_registry

__all__ = ["run_config_schema", "typed_run_config"]


def _spec_type(kind: str) -> Any:
    variants = []
    for name, component in sorted(get_registry(kind).load_all().items()):
        config: type[BaseModel] = component.Config
        required = any(field.is_required() for field in config.model_fields.values())
        params = (config, ...) if required else (config, Field(default_factory=config))
        variants.append(
            create_model(  # type: ignore[call-overload]
                f"{kind}_{name}",
                __base__=Section,
                __doc__=(component.__doc__ or "").strip().split("\n\n")[0] or None,
                name=(Literal[name], ...),
                params=params,
            )
        )
    if not variants:
        return ComponentSpec
    if len(variants) == 1:
        return variants[0]
    return Annotated[Union[tuple(variants)], Field(discriminator="name")]  # noqa: UP007


def typed_run_config() -> type[BaseModel]:
    """A :class:`RunConfig` variant whose component references are typed per component."""
    spec = {kind: _spec_type(kind) for kind in KINDS}
    data = create_model("DataSection", __base__=DataSection, dataset=(spec["datasets"], ...))
    evaluator_spec, stage_spec = spec["evaluators"], spec["preprocessing"]
    evaluation = create_model(
        "EvaluationSection",
        __base__=EvaluationSection,
        evaluators=(list[evaluator_spec], Field(default_factory=list)),
    )
    preprocess = create_model(
        "PreprocessSection",
        __base__=PreprocessSection,
        source=(spec["sources"], ...),
        stages=(list[stage_spec], Field(default_factory=list)),
    )
    return create_model(  # type: ignore[no-any-return, call-overload]
        "RunConfig",
        __base__=RunConfig,
        preprocessing=(preprocess | None, None),
        tokenizer=(spec["tokenizers"] | None, None),
        data=(data | None, None),
        model=(spec["models"] | None, None),
        loss=(spec["losses"] | None, None),
        evaluation=(evaluation, Field(default_factory=evaluation)),
    )


def run_config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of run configurations."""
    schema = typed_run_config().model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ephys run configuration"
    return schema
