"""``ephys config``: validate run configurations and print their JSON schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Validate run configurations and print their JSON schema.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Run configuration (YAML).")],
    override: Annotated[
        list[str] | None,
        typer.Option("--override", "-o", help="Dotted KEY=VALUE override. Repeatable."),
    ] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Print the validated configuration in full.")
    ] = False,
) -> None:
    """Check a configuration: its structure, then every component's parameters.

    Exits with status 1 and one line per problem (each with its full dotted path) if anything
    is wrong.
    """
    import yaml

    from ephys_core.cli._console import err_console, out_console
    from ephys_core.config import load_config

    config = load_config(file, override or ()).resolve()
    if show:
        out_console().print(yaml.safe_dump(config.to_data(), sort_keys=False), markup=False)
    parts = [f"{path}={spec.name}" for path, _, spec in config.component_specs()]
    err_console().print(f"[green]valid[/]: {file}" + (f" ({', '.join(parts)})" if parts else ""))


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of run configurations, covering every installed component.

    Editors use it for completion and validation of YAML files. Components that fail to load
    are left out (with a warning).
    """
    import json

    from ephys_core.schema import run_config_schema

    text = json.dumps(run_config_schema(), indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
