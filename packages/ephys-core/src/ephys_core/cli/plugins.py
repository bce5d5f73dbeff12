"""``ephys plugins``: what is installed, where it comes from, and whether it works."""

from __future__ import annotations

from typing import Annotated, Any

import typer

app = typer.Typer(add_completion=False)

_EXTRA_KINDS = ("cli", "hooks")


def _rows(kind: str | None, check: bool) -> list[dict[str, Any]]:
    from ephys_core.kinds import CLI_GROUP, HOOKS_GROUP, KINDS
    from ephys_core.plugins import current_host

    host = current_host()
    rows: list[dict[str, Any]] = []
    for name in KINDS:
        if kind not in (None, name):
            continue
        registry = host.registry(name)
        if check:
            registry.load_all()
        else:
            registry.preflight()
        rows.extend(entry.to_dict() for entry in registry.entries())
        rows.extend(alias.to_dict() for alias in registry.aliases())
    if kind in (None, "cli"):
        rows.extend(_cli_rows(host.records(CLI_GROUP), check))
    if kind in (None, "hooks"):
        if check:
            rows.extend(module.to_dict() for module in host.hooks.modules)
        else:
            rows.extend(_static_rows("hooks", host.records(HOOKS_GROUP)))
    return rows


def _static_rows(kind: str, records: list[Any]) -> list[dict[str, Any]]:
    from ephys_core._preflight import preflight, save_cache

    rows = []
    for record in records:
        problem = preflight(record.value)
        rows.append(
            {
                "kind": kind,
                "name": record.name,
                "target": record.value,
                "distribution": record.distribution,
                "version": record.version,
                "origin": "entry point",
                "status": "error" if problem else "not loaded",
                "error": problem,
            }
        )
    save_cache()
    return rows


def _cli_rows(records: list[Any], check: bool) -> list[dict[str, Any]]:
    rows = _static_rows("cli", records)
    if not check:
        return rows
    from ephys_core._discovery import resolve_target

    for row in rows:
        try:
            resolve_target(row["target"])
            row["status"], row["error"] = "ok", None
        except Exception as exc:
            row["status"], row["error"] = "error", f"{type(exc).__name__}: {exc}"
    return rows


def _render(rows: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ephys_core.cli._console import err_console, out_console

    table = Table(title="ephys plugins", title_justify="left", expand=False)
    for column in ("kind", "name", "distribution", "status", "target / error"):
        table.add_column(column, overflow="fold")
    style = {"ok": "green", "error": "bold red", "not loaded": "dim", "alias": "yellow"}
    for row in rows:
        dist = row["distribution"] or "(registered)"
        if row["version"]:
            dist += f" {row['version']}"
        detail = escape(row["error"] or row["target"])
        if row["status"] == "alias":
            detail = escape(f"deprecated name of {row['target']}")
        status = row["status"]
        table.add_row(
            row["kind"],
            row["name"],
            dist,
            f"[{style[status]}]{status}[/]",
            f"[red]{detail}[/]" if row["error"] else f"[dim]{detail}[/]",
        )
    out_console().print(table)
    broken = sum(row["status"] == "error" for row in rows)
    dists = {row["distribution"] for row in rows if row["distribution"]}
    summary = f"{len(rows)} entries from {len(dists)} distributions"
    if broken:
        summary += f"; [bold red]{broken} broken[/] (details: `ephys plugins --check`)"
    err_console().print(summary)


@app.command(name="plugins")
def plugins(
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            "-k",
            help="Only this kind: models, losses, evaluators, preprocessing, "
            "tokenizers, datasets, sources, cli or hooks.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Import every plugin; exit with status 1 if any fails to load."
        ),
    ] = False,
) -> None:
    """List installed plugins: every component, command and hook module, and its status.

    Without --check nothing is imported: status is "not loaded", or "error" when a problem is
    visible from the files alone (missing module or dependency, syntax error, duplicate name).
    With --check every plugin is imported and status becomes "ok" or "error".
    """
    if kind is not None and kind not in _EXTRA_KINDS:
        from ephys_core.kinds import get_kind

        kind = get_kind(kind).name
    rows = _rows(kind, check)
    if as_json:
        from ephys_core.cli._console import print_json

        print_json(rows)
    else:
        _render(rows)
    if check and any(row["status"] == "error" for row in rows):
        raise typer.Exit(1)
