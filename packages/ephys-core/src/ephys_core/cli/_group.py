"""A typer group whose sub-commands are imported only when they run.

``ephys --help`` lists every command, including those that plugins add through ``ephys.cli``
entry points, from metadata alone: the listing shows a summary stub, and the real command is
imported by :meth:`LazyGroup.resolve_command` only when it is invoked (or its own ``--help`` is
asked for). A plugin command that fails to import gives a one-line error naming its
distribution; it never breaks the rest of the tool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from ephys_core.cli._lifecycle import BUILTIN, BUILTIN_MODULES, LIFECYCLE
from ephys_core.errors import EphysError

__all__ = ["LazyGroup"]

PANEL_CORE = "Plugins and configuration"
PANEL_WORKFLOW = "Workflow"
PANEL_PLUGINS = "Commands added by plugins"


@dataclass(frozen=True)
class _LazySpec:
    target: str | None  # "module:attr"; None: provider not installed
    help: str
    panel: str
    provider: str
    version: str | None = None


def _not_installed(name: str, provider: str) -> TyperCommand:
    def callback() -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version(provider)
        except PackageNotFoundError:
            raise EphysError(
                f"`ephys {name}` is provided by {provider}, which is not installed: "
                f'pip install "{provider}"'
            ) from None
        raise EphysError(
            f"`ephys {name}` should come from {provider}, but the installed {provider} {found} "
            f"does not provide it (EPHYS_DISABLE_PLUGINS may hide it); reinstall or upgrade "
            f"{provider}"
        )

    return TyperCommand(
        name,
        callback=callback,
        help=f"{LIFECYCLE[name].help} (needs {provider})",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
        rich_help_panel=PANEL_WORKFLOW,
    )


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
        from ephys_core.kinds import CLI_GROUP
        from ephys_core.logging import get_logger
        from ephys_core.plugins import current_host

        specs = {
            name: _LazySpec(BUILTIN_MODULES[name], info.help, PANEL_CORE, info.provider)
            for name, info in BUILTIN.items()
        }
        specs.update(
            (name, _LazySpec(None, info.help, PANEL_WORKFLOW, info.provider))
            for name, info in LIFECYCLE.items()
        )
        for record in current_host().records(CLI_GROUP):
            existing = specs.get(record.name)
            if record.name in BUILTIN or (existing is not None and existing.target is not None):
                get_logger(__name__).warning(
                    "ignoring command %r from %s: the name is already taken by %s",
                    record.name,
                    record.label,
                    existing.provider if existing else "ephys-core",
                )
                continue
            lifecycle = LIFECYCLE.get(record.name)
            specs[record.name] = _LazySpec(
                record.value,
                lifecycle.help if lifecycle else f"Added by {record.label}.",
                PANEL_WORKFLOW if lifecycle else PANEL_PLUGINS,
                record.distribution or "a plugin",
                record.version,
            )
        self._specs = specs
        return specs

    def list_commands(self, ctx: Any) -> list[str]:
        specs = self._lazy_specs()
        eager = [name for name in super().list_commands(ctx) if name not in specs]
        workflow = [n for n in LIFECYCLE if n in specs]
        plugins = sorted(n for n, s in specs.items() if s.panel == PANEL_PLUGINS)
        return [*BUILTIN, *workflow, *plugins, *eager]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self._loaded:
            return self._loaded[cmd_name]
        spec = self._lazy_specs().get(cmd_name)
        if spec is None:
            return super().get_command(ctx, cmd_name)
        if spec.target is None:
            return _not_installed(cmd_name, spec.provider)
        # a stub that carries the summary for help listings; invocation goes through
        # resolve_command, which imports the real command
        return TyperCommand(cmd_name, help=spec.help, rich_help_panel=spec.panel)

    # -- invocation ------------------------------------------------------------------------
    def _load(self, name: str) -> Any:
        spec = self._lazy_specs()[name]
        if name in self._loaded or spec.target is None:
            return
        from ephys_core._discovery import resolve_target

        try:
            obj = resolve_target(spec.target)
            command = typer.main.get_command(obj) if isinstance(obj, typer.Typer) else obj
            if not callable(getattr(command, "make_context", None)):
                raise TypeError(f"{spec.target} is neither a typer.Typer nor a click command")
        except Exception as exc:
            origin = f"{spec.provider} {spec.version or ''}".strip()
            raise EphysError(
                f"command {name!r} from {origin} ({spec.target}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self._loaded[name] = command

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] in self._lazy_specs():
            self._load(args[0])
        elif args and not args[0].startswith("-"):
            names = self.list_commands(ctx)
            if args[0] not in names:
                from difflib import get_close_matches

                close = get_close_matches(args[0], names, n=3)
                hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                ctx.fail(f"No such command {args[0]!r}.{hint}")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EphysError as err:
            if ctx.params.get("debug"):
                raise
            from ephys_core.cli._console import print_error

            print_error(str(err))
            raise typer.Exit(2 if isinstance(err, LookupError) else 1) from None
