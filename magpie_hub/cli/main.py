"""Entry point: builds the Typer app, adds plugin commands, renders every error in one place."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from magpie_hub import __version__
from magpie_hub.cli import curate as curate_cmd
from magpie_hub.cli import generate as generate_cmd
from magpie_hub.cli import hub as hub_cmd
from magpie_hub.cli import import_cmd
from magpie_hub.cli import init as init_cmd
from magpie_hub.cli import plugins as plugins_cmd
from magpie_hub.cli import publish as publish_cmd
from magpie_hub.cli import review as review_cmd
from magpie_hub.cli import templates as templates_cmd
from magpie_hub.cli.output import err
from magpie_hub.errors import MagpieHubError, StorageError

DEBUG_ENV = "MAGPIE_HUB_DEBUG"


def make_app() -> typer.Typer:
    app = typer.Typer(
        name="magpie-hub",
        help="Make open alignment data with the Magpie method.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(
        version: Annotated[
            bool, typer.Option("--version", help="Print the version and exit.")
        ] = False,
    ) -> None:
        if version:
            print(__version__)
            raise typer.Exit()

    init_cmd.register(app)
    generate_cmd.register(app)
    plugins_cmd.register(app)
    templates_cmd.register(app)
    curate_cmd.register(app)
    import_cmd.register(app)
    hub_cmd.register(app)
    review_cmd.register(app)
    publish_cmd.register(app)

    from magpie_hub.plugins import get_plugins

    loaded = get_plugins()
    loaded.manager.hook.register_commands(cli=app)
    return app


def _warn_plugin_failures() -> None:
    from magpie_hub.plugins import get_plugins

    for info in get_plugins().failures:
        err.print(
            f"[yellow]Warning:[/] plugin {info.name!r} failed to load: {info.error} "
            "(`magpie-hub plugins` lists plugins)",
            highlight=False,
        )


def main(argv: list[str] | None = None) -> None:
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        _run(argv)
    except OSError as exc:  # the disk said no: one message, like our own errors
        storage = StorageError.from_os_error(exc)
        if storage is None or debug:
            raise
        _report(storage, debug)


def _run(argv: list[str] | None) -> None:
    from magpie_hub.cli.options import bare_ray_flag

    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        app = make_app()
        if "plugins" not in (argv if argv is not None else sys.argv[1:]):
            _warn_plugin_failures()
        # Without standalone mode, Click returns the code of a `typer.Exit` instead of raising.
        args = bare_ray_flag(argv if argv is not None else sys.argv[1:])
        code = app(args=args, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except MagpieHubError as exc:
        if debug:
            raise
        _report(exc, debug)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("Aborted.")
        sys.exit(130)
    except typer.TyperException as exc:
        # Typer keeps its Click copy private; usage errors are TyperExceptions with show().
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"Error: {exc}")
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)


def _report(exc: MagpieHubError, debug: bool) -> None:
    """One message, the hint, then exit; the one place errors reach the user."""
    # Messages name config sections such as [curate]: never read them as markup.
    err.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False)
    if exc.hint:
        err.print(f"[bold]Hint:[/] {escape(exc.hint)}", highlight=False)
    if not debug:
        err.print(f"[dim](set {DEBUG_ENV}=1 for a traceback)[/]")
    sys.exit(getattr(exc, "exit_code", 1))
