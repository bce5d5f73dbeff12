"""``ephys info KIND NAME``: what a component does, its parameters and an example."""

from __future__ import annotations

from typing import Annotated, Any

import typer

app = typer.Typer(add_completion=False)

# where a component of each kind sits in a run configuration, for the example snippet
_SLOTS: dict[str, tuple[str, ...]] = {
    "models": ("model",),
    "losses": ("loss",),
    "tokenizers": ("tokenizer",),
    "datasets": ("data", "dataset"),
    "evaluators": ("evaluation", "evaluators", "[]"),
    "preprocessing": ("preprocessing", "stages", "[]"),
    "sources": ("preprocessing", "source"),
}
_METADATA = ("causal", "time_stride", "metrics", "outputs", "preserves_duration")


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "")


def _params(config_model: Any) -> list[dict[str, Any]]:
    from pydantic_core import PydanticUndefined

    rows = []
    for name, field in config_model.model_fields.items():
        if field.default is not PydanticUndefined:
            default: Any = field.default
        elif field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        else:
            default = "(required)"
        rows.append(
            {
                "name": name,
                "type": _type_name(field.annotation),
                "default": default,
                "description": field.description or "",
            }
        )
    return rows


def _snippet(kind: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    node: Any = {"name": name, "params": params} if params else {"name": name}
    for key in reversed(_SLOTS[kind]):
        node = [node] if key == "[]" else {key: node}
    return node  # type: ignore[no-any-return]


def describe_component(kind: str, name: str) -> dict[str, Any]:
    """Everything ``ephys info`` shows, as JSON-ready data (imports the component)."""
    import inspect

    from ephys_core.components import example_config_of
    from ephys_core.plugins import get_registry

    registry = get_registry(kind)
    component = registry.load(name)
    entry = registry.info(name)
    example = example_config_of(component).model_dump(mode="json")
    return {
        "kind": kind,
        "name": name,
        "distribution": entry.distribution,
        "version": entry.version,
        "target": entry.target,
        "description": inspect.getdoc(component) or "",
        # class-level facts only: a property (a tokenizer's stride that depends on its
        # parameters) is not one
        "metadata": {
            key: getattr(component, key)
            for key in _METADATA
            if hasattr(component, key) and not isinstance(getattr(component, key), property)
        },
        "params": _params(component.Config),
        "schema": component.Config.model_json_schema(),
        "example": _snippet(kind, name, example),
    }


def _render(data: dict[str, Any]) -> None:
    import yaml
    from rich.markup import escape
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.table import Table

    from ephys_core.cli._console import out_console

    console = out_console()
    origin = f"{data['distribution'] or 'registered'} {data['version'] or ''}".strip()
    console.print(f"[bold]{data['name']}[/] ({data['kind']}) from {origin}: {data['target']}")
    if data["description"]:
        console.print(Panel(escape(data["description"]), expand=False))
    for key, value in data["metadata"].items():
        console.print(f"  {key}: {value!r}")
    table = Table(title="parameters", title_justify="left")
    for column in ("name", "type", "default", "description"):
        table.add_column(column, overflow="fold")
    for row in data["params"]:
        table.add_row(
            row["name"],
            escape(row["type"]),
            escape(repr(row["default"])),
            escape(row["description"]),
        )
    console.print(table)
    console.print("example configuration:")
    console.print(Syntax(yaml.safe_dump(data["example"], sort_keys=False), "yaml"))


@app.command(name="info")
def info(
    kind: Annotated[str, typer.Argument(help="Kind: models, losses, datasets, ...")],
    name: Annotated[str, typer.Argument(help="Registry name of the component.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Describe one component: description, metadata, parameters and an example config."""
    from ephys_core.kinds import get_kind

    data = describe_component(get_kind(kind).name, name)
    if as_json:
        from ephys_core.cli._console import print_json

        print_json(data)
    else:
        _render(data)
