"""A typer group whose sub-commands are imported only when they run.

``ephys --help`` lists ephys-core's own commands and every command an installed distribution
adds through an ``ephys.cli`` entry point, from metadata alone: each command's one-line help is
read from its source without importing it (:func:`ephys_core._preflight.command_summary`), and
the real command is imported by :meth:`LazyGroup.resolve_command` only when it is invoked (or
its own ``--help`` is asked for). A command that fails to import gives a one-line error naming
its distribution; it never breaks the rest of the tool.

Every error that reaches the command line is printed as one line (``--debug`` shows the
traceback): errors ephys raises on purpose as they are, anything else with its type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from ephys_core.errors import EphysError

__all__ = ["BUILTIN", "LazyGroup"]

PANEL_CORE = "Plugins and configuration"
PANEL_COMMANDS = "Commands of installed packages"


@dataclass(frozen=True)
class _LazySpec:
    target: str  # "module:attr"
    help: str
    panel: str
    provider: str
    version: str | None = None


#: ephys-core's own commands (they cannot be disabled by the plugin policy)
BUILTIN: dict[str, _LazySpec] = {
    "plugins": _LazySpec(
        "ephys_core.cli.plugins:app", "List installed plugins and their status.", PANEL_CORE, ""
    ),
    "info": _LazySpec(
        "ephys_core.cli.info:app",
        "Describe one component: parameters, example config.",
        PANEL_CORE,
        "",
    ),
    "config": _LazySpec(
        "ephys_core.cli.config:app",
        "Validate run configurations and print their JSON schema.",
        PANEL_CORE,
        "",
    ),
}


class LazyGroup(TyperGroup):
    """Typer group that discovers built-in and plugin commands lazily."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._specs: dict[str, _LazySpec] | None = None
        self._loaded: dict[str, Any] = {}

    # -- discovery (metadata only) ---------------------------------------------------------
    def _lazy_specs(self) -> dict[str, _LazySpec]:
        if self._specs is not None:
            return self._specs
        from ephys_core._preflight import command_summary, save_cache
        from ephys_core.kinds import CLI_GROUP
        from ephys_core.logging import get_logger
        from ephys_core.plugins import current_host

        specs = dict(BUILTIN)
        for record in current_host().records(CLI_GROUP):
            existing = specs.get(record.name)
            if existing is not None:
                get_logger(__name__).warning(
                    "ignoring command %r from %s: the name is already taken by %s",
                    record.name,
                    record.label,
                    existing.provider or "ephys-core",
                )
                continue
            specs[record.name] = _LazySpec(
                record.value,
                command_summary(record.value) or f"Added by {record.label}.",
                PANEL_COMMANDS,
                record.distribution or "a plugin",
                record.version,
            )
        save_cache()
        self._specs = specs
        return specs

    def list_commands(self, ctx: Any) -> list[str]:
        specs = self._lazy_specs()
        eager = [name for name in super().list_commands(ctx) if name not in specs]
        added = sorted(name for name in specs if name not in BUILTIN)
        return [*BUILTIN, *added, *eager]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self._loaded:
            return self._loaded[cmd_name]
        spec = self._lazy_specs().get(cmd_name)
        if spec is None:
            return super().get_command(ctx, cmd_name)
        # a stub that carries the summary for help listings; invocation goes through
        # resolve_command, which imports the real command
        return TyperCommand(cmd_name, help=spec.help, rich_help_panel=spec.panel)

    # -- invocation ------------------------------------------------------------------------
    def _load(self, name: str) -> None:
        spec = self._lazy_specs()[name]
        if name in self._loaded:
            return
        from ephys_core._discovery import resolve_target

        try:
            obj = resolve_target(spec.target)
            command = typer.main.get_command(obj) if isinstance(obj, typer.Typer) else obj
            if not callable(getattr(command, "make_context", None)):
                raise TypeError(f"{spec.target} is neither a typer.Typer nor a click command")
        except Exception as exc:
            origin = f"{spec.provider or 'ephys-core'} {spec.version or ''}".strip()
            raise EphysError(
                f"command {name!r} from {origin} ({spec.target}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        _markdown_help(command)
        self._loaded[name] = command

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] in self._lazy_specs():
            self._load(args[0])
        elif args and not args[0].startswith("-"):
            names = self.list_commands(ctx)
            if args[0] not in names:
                from difflib import get_close_matches

                close = get_close_matches(args[0], names, n=3)
                hint = (
                    f" Did you mean {', '.join(repr(c) for c in close)}?"
                    if close
                    else " Commands come from installed packages: the full toolkit is "
                    "`pip install ephys`; `ephys plugins --kind cli` lists what is installed."
                )
                ctx.fail(f"No such command {args[0]!r}.{hint}")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as err:
            if _debug(ctx) or _is_click_control(err):
                raise
            from ephys_core.cli._console import print_error

            print_error(_one_line(err))
            raise typer.Exit(2 if isinstance(err, LookupError) else 1) from None


def _debug(ctx: Any) -> bool:
    import os

    return bool(ctx.params.get("debug")) or os.environ.get("EPHYS_DEBUG", "").strip().lower() in {
        "1",
        "true",
        "yes",
        "on",
    }


def _is_click_control(err: BaseException) -> bool:
    """Exits, aborts and usage errors, which click handles itself.

    Recognised by class name because typer vendors click in some versions and not in others.
    """
    names = {cls.__name__ for cls in type(err).__mro__}
    return bool(names & {"Exit", "Abort", "ClickException"})


def _one_line(err: BaseException) -> str:
    """What the user sees of an error: ephys's own as written, anything else with its type."""
    if isinstance(err, EphysError):
        return str(err)
    text = " ".join(str(err).split()) or "(no message)"
    return f"{type(err).__name__}: {text} (run with --debug for the traceback)"


def _markdown_help(command: Any) -> None:
    """Render a plugin command's help (and its subcommands') as the top level does: markdown,
    so a docstring's lines join into paragraphs that wrap to the terminal."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = "markdown"
    for sub in getattr(command, "commands", {}).values():
        _markdown_help(sub)
