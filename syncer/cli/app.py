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
import json as jsonlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
import structlog

from syncer import __version__
from syncer.errors import ConfigError, SyncerError

if TYPE_CHECKING:
    from datetime import datetime

    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config
    from syncer.sync.normalize import NormalizeCounts

F = TypeVar("F", bound=Callable[..., Any])
log = structlog.get_logger(__name__)

# Runs before logging's own exit hook (atexit is last-in, first-out), which still flushes.
atexit.register(gc.freeze)


@dataclass
class _State:
    config_path: str | None
    verbose: int
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from syncer import logs
            from syncer.config.schema import load_config

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


#: Commands that live in modules of their own, imported only when named (``syncer --help``
#: imports them all): every ``syncer`` start, a no-change sync above all, would otherwise pay
#: for importing every feature's commands. name -> "module:attribute".
_FEATURE_COMMANDS = {
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
        from syncer.secrets import resolve_secret

        problems: list[str] = []
        for acc in cfg.accounts:
            try:
                if acc.oauth2 is None:
                    resolve_secret(acc, owner=f"account {acc.name!r}")
                else:  # OAuth2 (issue 11): the client secret instead of a password
                    from syncer.oauth.from_config import read_client_secret

                    read_client_secret(acc.oauth2, owner=f"account {acc.name!r}")
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
    from syncer.daemon.scheduler import build_jobs

    jobs = build_jobs(cfg)  # every schedule as `syncer run` reads it
    click.echo(
        f"{cfg.path}: OK ({len(cfg.accounts)} accounts, {len(cfg.smtp)} SMTP servers, "
        f"{len(jobs)} scheduled jobs)."
    )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def status(state: _State, as_json: bool) -> None:
    """Accounts, folders, message counts, last sync, archive size, and the scheduled jobs.

    Each job (e.g. sync:work) shows its last run, outcome and next run, computed
    from the configuration and the archive, whether or not `syncer run` is running.

    \b
    Example:
      syncer status --json
    """
    from syncer.daemon.scheduler import jobs_status

    with state.open_store() as store:
        data = store.status()
        data["jobs"] = jobs_status(state.config, store)
    if as_json:
        _emit_json(data)
        return
    from syncer.cli.render import render_jobs, render_status

    render_status(data)
    render_jobs(data["jobs"])


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
@click.option(
    "--no-normalize",
    is_flag=True,
    help="Archive raw mail only; leave normalization to `syncer normalize`.",
)
@pass_state
def sync(
    state: _State,
    accounts: tuple[str, ...],
    folders: tuple[str, ...],
    as_json: bool,
    wait: bool,
    no_normalize: bool,
) -> None:
    """Pull new mail, flag changes and expunges from the accounts into the archive.

    All accounts when none is named. Exit 0 when every account synced, 1 when
    any failed (the others still run). Then the new messages are normalized
    (addresses, text, attachments ...), unless --no-normalize.

    \b
    Example:
      syncer sync
      syncer sync work --folder 'Archive/*' --json
    """
    from syncer.sync.runner import sync_accounts

    cfg = state.config
    selected = [cfg.account(n) for n in accounts] if accounts else list(cfg.accounts)
    if not selected:
        raise ConfigError(f"{cfg.path}: no [[accounts]] configured; nothing to sync.")
    normalize_error: str | None = None
    normalized = 0
    with state.open_store() as store:
        summaries = sync_accounts(
            cfg, store, selected, folder_globs=folders, wait=wait, progress=not as_json
        )
        if not no_normalize:
            try:
                # One indexed count first: a no-change sync then never imports the
                # normalizer (about 0.1 s of start-up, a sixth of such a run).
                if store.normalization_backlog():
                    normalized = _normalize(state, store, show_progress=not as_json).processed
            except SyncerError as exc:
                normalize_error = exc.message
    if as_json:
        _emit_json([_summary_dict(s) for s in summaries])
    else:
        from syncer.cli.render import render_sync

        render_sync(summaries)
        if normalized:
            click.echo(f"Normalized {normalized} message{'s' if normalized != 1 else ''}.")
    if normalize_error is not None:
        click.echo(f"Error: normalization stopped: {normalize_error}", err=True)
        click.echo("The mail is archived; run `syncer normalize` to finish.", err=True)
    if not all(s.ok for s in summaries) or normalize_error is not None:
        sys.exit(1)


def _normalize(
    state: _State,
    store: ArchiveStore,
    *,
    show_progress: bool,
    rebuild: bool = False,
    since: datetime | None = None,
    workers: int | None = None,
) -> NormalizeCounts:
    from contextlib import nullcontext

    from syncer.cli.render_mail import NormalizeProgress
    from syncer.sync.normalize import normalize_pending

    bar = NormalizeProgress() if show_progress else nullcontext(None)
    with bar as progress:
        return normalize_pending(
            store,
            rebuild=rebuild,
            since=since,
            workers=workers,
            progress=progress,
            verify_dkim=state.config.archive.verify_dkim,
        )


@main.command()
@click.option(
    "--once", is_flag=True, help="Run every job once, then exit (for a systemd timer or cron)."
)
@click.option(
    "--worker",
    envvar="SYNCER_WORKER",
    help="This worker's name in leases and run records (default: the host name; $SYNCER_WORKER).",
)
@pass_state
def run(state: _State, once: bool, worker: str | None) -> None:
    """Run the scheduled jobs: a daemon until SIGTERM/SIGINT, or each job once with --once.

    Each account is synced on its `schedule` (cron) or `every` (interval); several
    `syncer run` processes can share one PostgreSQL archive (each account is synced
    by one of them at a time). SIGTERM/SIGINT stop after the batch in flight (within
    [scheduler] grace_period) and exit 0; SIGHUP reloads the configuration. With
    --once, exit 1 if any job failed.

    \b
    Example:
      syncer run
      syncer run --once
      SYNCER_WORKER=node-2 syncer run
    """
    from syncer.daemon.service import run_daemon

    sys.exit(run_daemon(state.config, state.open_store(), once=once, worker=worker))


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
    from syncer.sync.runner import check_accounts

    cfg = state.config
    selected = [cfg.account(n) for n in accounts] if accounts else list(cfg.accounts)
    with state.open_store() as store:
        reports = check_accounts(cfg, store, selected)
    if as_json:
        _emit_json(reports)
    else:
        from syncer.cli.render import render_check

        render_check(reports)
    if not all(r["complete"] for r in reports):
        sys.exit(1)


@main.command("normalize")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Re-derive every message (with --since: those since then), not only those awaiting it.",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Only messages dated on or after this UTC day or time (undated ones: archived since).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes to parse with (default: one per core; 1 works in-process).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def normalize_command(
    state: _State, rebuild: bool, since: datetime | None, workers: int | None, as_json: bool
) -> None:
    """Derive addresses, dates, text, attachments, threads and verdicts from the raw mail.

    Works on the messages awaiting it (new since the last run, or derived by an
    older syncer); --rebuild re-derives them all from the archived bytes.
    Resumable: an interrupted run keeps every batch it finished.

    \b
    Example:
      syncer normalize
      syncer normalize --rebuild --since 2024-01-01 --json
    """
    from dataclasses import asdict
    from datetime import UTC

    with state.open_store() as store:
        counts = _normalize(
            state,
            store,
            show_progress=not as_json,
            rebuild=rebuild,
            since=since.replace(tzinfo=UTC) if since is not None else None,
            workers=workers,
        )
    if as_json:
        _emit_json(asdict(counts))
        return
    click.echo(
        f"Normalized {counts.processed} message{'s' if counts.processed != 1 else ''} "
        f"({counts.ok} ok, {counts.partial} partial, {counts.failed} failed) "
        f"in {counts.seconds:.1f} s with {counts.workers} "
        f"process{'es' if counts.workers != 1 else ''}."
    )


@main.command()
@click.argument("message", metavar="ID")
@click.option("--raw", is_flag=True, help="Write the exact archived bytes to stdout.")
@click.option(
    "--attachment",
    type=click.IntRange(min=1),
    metavar="N",
    help="Write attachment N (as `syncer show ID` numbers them), decoded, to --out.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=str),
    help="The file --attachment writes ('-': stdout). Never a name taken from the mail.",
)
@click.option("--force", is_flag=True, help="Let --attachment replace an existing --out file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def show(
    state: _State,
    message: str,
    raw: bool,
    attachment: int | None,
    out: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Show one archived message: headers, addresses, attachments, verdicts, folders, text.

    ID is the message id (as `syncer show` and searches print it) or the first
    8 or more hex digits of its SHA-256.

    \b
    Example:
      syncer show 42
      syncer show 3fa2c9e1 --json
      syncer show 42 --raw > message.eml
      syncer show 42 --attachment 1 --out invoice.pdf
    """
    if raw and attachment is not None:
        raise click.UsageError("--raw and --attachment cannot be combined.")
    if (attachment is None) != (out is None):
        raise click.UsageError("--attachment N and --out FILE go together.")
    with state.open_store() as store:
        message_pk = store.find_message(message)
        view = store.message_view(message_pk)
        if raw or attachment is not None:
            content = store.get_raw(view["sha256"])
    if raw:
        _write_stdout(content)
        return
    if attachment is not None and out is not None:
        _write_attachment(view, content, attachment, out, force=force)
        return
    if as_json:
        _emit_json(view)
        return
    from syncer.cli.render_mail import render_show

    render_show(view)


def _write_attachment(
    view: dict[str, Any], raw: bytes, number: int, out: str, *, force: bool
) -> None:
    import hashlib

    from syncer.errors import ArchiveError
    from syncer.mime.normalize import attachment_content

    listed = view["attachments"]
    if number > len(listed):
        pending = " (not normalized yet: run `syncer normalize`)" * (
            view["parse"]["status"] == "pending"
        )
        raise click.UsageError(
            f"Message {view['id']} has {len(listed)} attachment"
            f"{'s' if len(listed) != 1 else ''}{pending}; there is no attachment {number}."
        )
    item = listed[number - 1]
    content = attachment_content(raw, item["part_path"])
    if content is None or hashlib.sha256(content).hexdigest() != item["sha256"]:
        raise ArchiveError(
            f"Attachment {number} (part {item['part_path']}) of message {view['id']} no longer "
            "decodes to the bytes recorded for it.",
            hint="Run `syncer normalize --rebuild` to re-derive the message.",
        )
    if out == "-":
        _write_stdout(content)
        return
    _write_file(Path(out), content, force=force)
    click.echo(
        f"Wrote attachment {number} ({len(content)} bytes, {item['content_type']}) to {out}.",
        err=True,
    )


def _write_stdout(content: bytes) -> None:
    """Bytes to stdout exactly as they are (no newline translation, no encoding)."""
    sys.stdout.flush()
    sys.stdout.buffer.write(content)
    sys.stdout.buffer.flush()


def _write_file(path: Path, content: bytes, *, force: bool) -> None:
    """Write exactly ``path`` (the --out the user gave), never replacing a file unless ``force``."""
    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; add --force to replace it.")
    with path.open("wb" if force else "xb") as handle:
        handle.write(content)


def _summary_dict(summary: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(summary)
    data["new"] = summary.new
    data["bytes"] = summary.bytes
    return data


def _masked(url: str) -> str:
    from syncer.archive.engine import mask_url

    return mask_url(url)
