"""The ``syncer`` command line: thin commands over library functions.

This is the only place where errors become exit codes: a ``SyncerError`` is
printed as one line (``Error: ...`` plus its hint) and exits with its
``exit_code`` (2 for configuration and usage errors, 1 otherwise); anything
unexpected prints one line and asks for ``--verbose``, which shows the
traceback. Heavy modules are imported inside the commands.

Exit cost: at exit the interpreter's last garbage collection walks every object
the imported libraries made (SQLAlchemy, pydantic, structlog ...), about 0.2 s
on the benchmark machine -- a third of a no-change ``syncer sync``. An
``atexit`` hook freezes those objects first (:func:`gc.freeze`), so that walk
is skipped; the files and connections are closed by the commands themselves
and the operating system reclaims the memory.
"""

from __future__ import annotations

import atexit
import gc
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from syncer import __version__, logs  # logs before any structlog import: see logs.py
from syncer.cli.context import State
from syncer.errors import ConfigError, SyncerError

if TYPE_CHECKING:
    pass

F = TypeVar("F", bound=Callable[..., Any])

# Runs before logging's own exit hook (atexit is last-in, first-out), which still flushes.
atexit.register(gc.freeze)


def _fail(exc: SyncerError, verbose: int) -> NoReturn:
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    lines = (
        exc.problems if isinstance(exc, ConfigError) and len(exc.problems) > 1 else [exc.message]
    )
    click.echo(f"Error: {logs.redact_text(lines[0])}", err=True)
    for more in lines[1:]:
        click.echo(f"       {logs.redact_text(more)}", err=True)
    if exc.hint:
        click.echo(logs.redact_text(exc.hint), err=True)
    sys.exit(exc.exit_code)


#: Every command lives in the module of its group, imported only when named (``syncer --help``
#: imports them all): every ``syncer`` start, a no-change sync above all, would otherwise pay
#: for importing every command. name -> "module:attribute".
_FEATURE_COMMANDS = {
    "init": "syncer.cli.admin:init",
    "db": "syncer.cli.admin:db",
    "config": "syncer.cli.admin:config_group",
    "status": "syncer.cli.admin:status",
    "verify": "syncer.cli.admin:verify",
    "sync": "syncer.cli.sync:sync",
    "run": "syncer.cli.sync:run",
    "check": "syncer.cli.sync:check",
    "normalize": "syncer.cli.sync:normalize_command",
    "show": "syncer.cli.show:show",
    "search": "syncer.cli.search:search",
    "index": "syncer.cli.index:index",
    "retention": "syncer.cli.retention:retention_group",
    "hold": "syncer.cli.retention:hold_group",
    "audit": "syncer.cli.retention:audit_group",
    "export": "syncer.cli.transfer:export_command",
    "import": "syncer.cli.transfer:import_command",
    "push": "syncer.cli.transfer:push_command",
    "restore": "syncer.cli.transfer:restore_command",
    "backup": "syncer.cli.transfer:backup_command",
    "restore-archive": "syncer.cli.transfer:restore_archive_command",
    "auth": "syncer.cli.auth:auth_group",
    "digest": "syncer.cli.relay:digest_group",
    "forward": "syncer.cli.relay:forward_group",
    "outbox": "syncer.cli.relay:outbox_group",
    "completion": "syncer.cli.completion:completion",
    "user": "syncer.cli.users:user_group",
    "serve": "syncer.cli.web:serve_command",
}


class _Group(click.Group):
    """Turns every error raised under the group into a line and an exit code; loads the
    feature commands (:data:`_FEATURE_COMMANDS`) when they are named."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_FEATURE_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _FEATURE_COMMANDS:
            from importlib import import_module

            module, _, attribute = _FEATURE_COMMANDS[cmd_name].partition(":")
            command = getattr(import_module(module), attribute)
            assert isinstance(command, click.Command) and command.name == cmd_name
            self.add_command(command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SyncerError as exc:
            state = ctx.find_object(State)
            _fail(exc, state.verbose if state else 0)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as exc:
            state = ctx.find_object(State)
            if state and state.verbose:
                raise
            click.echo(
                f"Unexpected error: {type(exc).__name__}: {logs.redact_text(str(exc))}; "
                "rerun with -v to see the traceback.",
                err=True,
            )
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncer")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Configuration file (default: $SYNCER_CONFIG, ./syncer.toml, "
    "$XDG_CONFIG_HOME/syncer/config.toml).",
)
@click.option("-v", "--verbose", count=True, help="More logging; tracebacks on errors.")
@click.option(
    "-q", "--quiet", is_flag=True, help="Errors only: no progress, no notes (what cron wants)."
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    help="Also append the logs (JSON lines, info and up) to this file.",
)
@click.pass_context
def main(
    ctx: click.Context, config_path: str | None, verbose: int, quiet: bool, log_file: str | None
) -> None:
    """syncer: mailbox sync and archival.

    stderr shows warnings, errors and (off a terminal) a progress event every 10 s of
    long work; -v adds the info lines, -q leaves only errors.

    \b
    Example:
      syncer config init && syncer sync --dry-run
      syncer sync
      syncer -q --log-file /var/log/syncer.log sync
      syncer status --json
    """
    state = State(config_path=config_path, verbose=verbose, quiet=quiet, log_file=log_file)
    state.configure_logs()
    ctx.obj = state
