"""The ``syncer`` command line: thin commands over library functions.

This is the only place where errors become exit codes: a ``SyncerError`` is
printed as one line (``Error: ...`` plus its hint) and exits with its
``exit_code`` (2 for configuration and usage errors, 1 otherwise); anything
unexpected prints one line and asks for ``--verbose``, which shows the
traceback. Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import json as jsonlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
import structlog

from syncer import __version__
from syncer.errors import ConfigError, SyncerError

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config import Config

F = TypeVar("F", bound=Callable[..., Any])
log = structlog.get_logger(__name__)


@dataclass
class _State:
    config_path: str | None
    verbose: int
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from syncer import logs
            from syncer.config import load_config

            self._config = load_config(self.config_path)
            fmt = self._config.logging.format
            logs.configure(
                self.verbose,
                json=None if fmt == "auto" else fmt == "json",
                level=self._config.logging.level,
            )
        return self._config

    def open_store(self, *, create: bool = False) -> ArchiveStore:
        from syncer.archive.store import ArchiveStore

        cfg = self.config
        if create:
            from syncer.archive.engine import make_engine, upgrade

            engine = make_engine(cfg.archive_url)
            try:
                upgrade(engine)
            finally:
                engine.dispose()
        return ArchiveStore.open(cfg.archive_url, blob_store=cfg.blob_store)


pass_state = click.make_pass_decorator(_State)


def _emit_json(data: Any) -> None:
    click.echo(jsonlib.dumps(data, indent=2, sort_keys=True, default=str))


def _fail(exc: SyncerError, verbose: int) -> NoReturn:
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    from syncer.logs import redact_text

    lines = (
        exc.problems if isinstance(exc, ConfigError) and len(exc.problems) > 1 else [exc.message]
    )
    click.echo(f"Error: {redact_text(lines[0])}", err=True)
    for more in lines[1:]:
        click.echo(f"       {redact_text(more)}", err=True)
    if exc.hint:
        click.echo(redact_text(exc.hint), err=True)
    sys.exit(exc.exit_code)


class _Group(click.Group):
    """Turns every error raised under the group into a line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SyncerError as exc:
            state = ctx.find_object(_State)
            _fail(exc, state.verbose if state else 0)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as exc:
            state = ctx.find_object(_State)
            if state and state.verbose:
                raise
            from syncer.logs import redact_text

            click.echo(
                f"Unexpected error: {type(exc).__name__}: {redact_text(str(exc))}; "
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
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """syncer: mailbox sync and archival.

    \b
    Example:
      syncer --config syncer.toml init
      syncer sync
      syncer status --json
    """
    from syncer import logs

    logs.configure(verbose)
    ctx.obj = _State(config_path=config_path, verbose=verbose)


@main.command()
@pass_state
def init(state: _State) -> None:
    """Create the archive, or bring its schema up to date.

    \b
    Example:
      syncer init
    """
    from syncer.archive.engine import current_revision

    with state.open_store(create=True) as store:
        rev = current_revision(store.engine)
    click.echo(f"Archive ready at {_masked(state.config.archive_url)} (schema {rev}).")


@main.group()
def db() -> None:
    """Database schema: upgrade it, or show its revision."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_state
def db_upgrade(state: _State, revision: str) -> None:
    """Apply the schema migrations.

    \b
    Example:
      syncer db upgrade
    """
    from syncer.archive.engine import current_revision, make_engine, upgrade

    engine = make_engine(state.config.archive_url)
    try:
        upgrade(engine, revision)
        click.echo(f"Schema at {current_revision(engine)}.")
    finally:
        engine.dispose()


@db.command("current")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def db_current(state: _State, as_json: bool) -> None:
    """Show the schema revision of the archive and the one this syncer needs.

    \b
    Example:
      syncer db current
    """
    from syncer.archive.engine import current_revision, head_revision, make_engine

    engine = make_engine(state.config.archive_url)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    if as_json:
        _emit_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        click.echo(f"current: {current or 'none (run `syncer init`)'}\nhead:    {head}")


@main.group("config")
def config_group() -> None:
    """Configuration file checks."""


@config_group.command("check")
@click.option("--secrets/--no-secrets", default=True, help="Also resolve every password source.")
@pass_state
def config_check(state: _State, secrets: bool) -> None:
    """Validate the configuration file (and that every secret can be read).

    \b
    Example:
      syncer config check
    """
    cfg = state.config
    if secrets:
        from syncer.credentials import resolve_secret

        problems: list[str] = []
        for acc in cfg.accounts:
            try:
                resolve_secret(acc, owner=f"account {acc.name!r}")
            except ConfigError as exc:
                problems.append(exc.message)
        for smtp in cfg.smtp:
            if smtp.has_secret:
                try:
                    resolve_secret(smtp, owner=f"smtp {smtp.name!r}")
                except ConfigError as exc:
                    problems.append(exc.message)
        if problems:
            raise ConfigError(problems)
    click.echo(f"{cfg.path}: OK ({len(cfg.accounts)} accounts, {len(cfg.smtp)} SMTP servers).")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def status(state: _State, as_json: bool) -> None:
    """Accounts, folders, message counts, last sync and archive size.

    \b
    Example:
      syncer status --json
    """
    with state.open_store() as store:
        data = store.status()
    if as_json:
        _emit_json(data)
        return
    from syncer._render import render_status

    render_status(data)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def verify(state: _State, as_json: bool) -> None:
    """Re-read every stored blob and check its SHA-256; exit 1 on any mismatch.

    \b
    Example:
      syncer verify
    """
    with state.open_store() as store:
        problems = store.verify()
        total = store.status()["totals"]["blobs"]
    if as_json:
        _emit_json({"blobs": total, "problems": problems, "ok": not problems})
    else:
        for line in problems:
            click.echo(line)
        click.echo(
            f"{total} blobs checked, {len(problems)} problem{'s' if len(problems) != 1 else ''}."
        )
    if problems:
        sys.exit(1)


@main.command()
@click.argument("accounts", nargs=-1)
@click.option("--folder", "folders", multiple=True, help="Only folders matching this glob.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary per account.")
@click.option("--wait", is_flag=True, help="Wait for another run holding the account to finish.")
@pass_state
def sync(
    state: _State, accounts: tuple[str, ...], folders: tuple[str, ...], as_json: bool, wait: bool
) -> None:
    """Pull new mail, flag changes and expunges from the accounts into the archive.

    All accounts when none is named. Exit 0 when every account synced, 1 when
    any failed (the others still run).

    \b
    Example:
      syncer sync
      syncer sync work --folder 'Archive/*' --json
    """
    from syncer.runner import sync_accounts

    cfg = state.config
    selected = [cfg.account(n) for n in accounts] if accounts else list(cfg.accounts)
    if not selected:
        raise ConfigError(f"{cfg.path}: no [[accounts]] configured; nothing to sync.")
    with state.open_store() as store:
        summaries = sync_accounts(
            cfg, store, selected, folder_globs=folders, wait=wait, progress=not as_json
        )
    if as_json:
        _emit_json([_summary_dict(s) for s in summaries])
    else:
        from syncer._render import render_sync

        render_sync(summaries)
    if not all(s.ok for s in summaries):
        sys.exit(1)


@main.command()
@click.argument("accounts", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def check(state: _State, accounts: tuple[str, ...], as_json: bool) -> None:
    """Prove the archive is complete: compare each folder's UIDs on the server with the archive.

    Exit 1 when anything is missing on either side.

    \b
    Example:
      syncer check work --json
    """
    from syncer.runner import check_accounts

    cfg = state.config
    selected = [cfg.account(n) for n in accounts] if accounts else list(cfg.accounts)
    with state.open_store() as store:
        reports = check_accounts(cfg, store, selected)
    if as_json:
        _emit_json(reports)
    else:
        from syncer._render import render_check

        render_check(reports)
    if not all(r["complete"] for r in reports):
        sys.exit(1)


def _summary_dict(summary: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(summary)
    data["new"] = summary.new
    data["bytes"] = summary.bytes
    return data


def _masked(url: str) -> str:
    from syncer.archive.engine import mask_url

    return mask_url(url)
