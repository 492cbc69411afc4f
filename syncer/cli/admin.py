"""``syncer init``, ``db upgrade|current``, ``config check``, ``status`` and ``verify``:
setting up the archive and looking after it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from syncer.cli.context import State, emit_json, pass_state
from syncer.errors import ConfigError

if TYPE_CHECKING:
    from syncer.config.schema import Config


@click.command()
@pass_state
def init(state: State) -> None:
    """Create the archive, or bring its schema up to date.

    \b
    Example:
      syncer init
    """
    from syncer.archive.engine import current_revision

    with state.open_store(create=True) as store:
        rev = current_revision(store.engine)
    click.echo(f"Archive ready at {_masked(state.read_config().archive_url)} (schema {rev}).")


@click.group()
def db() -> None:
    """Database schema: upgrade it, or show its revision."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_state
def db_upgrade(state: State, revision: str) -> None:
    """Apply the schema migrations.

    \b
    Example:
      syncer db upgrade
    """
    from syncer.archive.engine import current_revision, make_engine, upgrade

    engine = make_engine(state.read_config().archive_url)
    try:
        upgrade(engine, revision)
        click.echo(f"Schema at {current_revision(engine)}.")
    finally:
        engine.dispose()


@db.command("current")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def db_current(state: State, as_json: bool) -> None:
    """Show the schema revision of the archive and the one this syncer needs.

    \b
    Example:
      syncer db current
    """
    from syncer.archive.engine import current_revision, head_revision, make_engine

    engine = make_engine(state.read_config().archive_url)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    if as_json:
        emit_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        click.echo(f"current: {current or 'none (run `syncer init`)'}\nhead:    {head}")


@click.group("config")
def config_group() -> None:
    """The configuration file: write a starter, print the example, check it."""


@config_group.command("init")
@click.option(
    "--provider",
    type=click.Choice(["generic", "gmail", "microsoft"]),
    default="generic",
    show_default=True,
    help="Whose server the starter is for: its host, sign-in and folders to skip.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@pass_state
def config_init(state: State, provider: str, force: bool, path: str | None) -> None:
    """Write a short, commented configuration to start from (default: ./syncer.toml).

    PATH defaults to --config, then $SYNCER_CONFIG, then ./syncer.toml; an existing
    file is kept unless --force. Edit host and username, then run `syncer sync --dry-run`.

    \b
    Example:
      syncer config init
      syncer config init --provider gmail ~/.config/syncer/config.toml
    """
    import os
    from pathlib import Path

    from syncer.config.starter import starter_text

    target = Path(path or state.config_path or os.environ.get("SYNCER_CONFIG") or "syncer.toml")
    if target.exists() and not force:
        raise ConfigError(
            f"{target} exists already; keep it, or overwrite it with --force.",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(starter_text(provider), encoding="utf-8")
    click.echo(f"Wrote {target} ({provider}). Next: edit host and username in it, then")
    flag = "" if target == Path("syncer.toml") else f" --config {target}"
    click.echo(f"  syncer{flag} sync --dry-run    # sign in and see what a sync would do")
    click.echo(f"  syncer{flag} sync              # archive the mail")


@config_group.command("example")
def config_example() -> None:
    """Print the full example configuration, every key explained.

    \b
    Example:
      syncer config example > syncer.toml
    """
    from syncer.config.starter import example_text

    click.echo(example_text(), nl=False)


@config_group.command("check")
@click.option("--secrets/--no-secrets", default=True, help="Also resolve every password source.")
@click.option(
    "--connect", is_flag=True, help="Also sign in to each account and list what a sync would do."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def config_check(state: State, secrets: bool, connect: bool, as_json: bool) -> None:
    """Validate the configuration file (and that every secret can be read).

    A misspelt key is named with the nearest valid one. With --connect, each
    account is signed in to and its folders listed, as `syncer sync --dry-run`
    does; exit 1 when an account did not answer.

    \b
    Example:
      syncer config check
      syncer config check --connect
    """
    cfg = state.config
    if secrets:
        problems = _secret_problems(cfg)
        if problems:
            raise ConfigError(problems)
    from syncer.daemon.scheduler import build_jobs

    jobs = build_jobs(cfg)  # every schedule as `syncer run` reads it
    if as_json and not connect:
        emit_json(
            {
                "path": str(cfg.path),
                "ok": True,
                "accounts": [a.name for a in cfg.accounts],
                "smtp": [s.name for s in cfg.smtp],
                "jobs": len(jobs),
            }
        )
        return
    if not as_json:
        click.echo(
            f"{cfg.path}: OK ({_count(len(cfg.accounts), 'account')}, "
            f"{_count(len(cfg.smtp), 'SMTP server')}, {_count(len(jobs), 'scheduled job')})."
        )
    if connect:
        from syncer.cli.sync import preview

        preview(state, list(cfg.accounts), (), as_json)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _secret_problems(cfg: Config) -> list[str]:
    """Every password and client secret that cannot be read, as one line each."""
    from syncer.secrets import resolve_secret

    problems: list[str] = []
    for acc in cfg.accounts:
        try:
            if acc.oauth2 is None:
                resolve_secret(acc, owner=f"account {acc.name!r}")
            else:  # OAuth2 (issue 11): the client secret instead of a password
                from syncer.config.tokens import read_client_secret

                read_client_secret(acc.oauth2, owner=f"account {acc.name!r}")
        except ConfigError as exc:
            problems.append(exc.message)
    for smtp in cfg.smtp:
        if smtp.has_secret:
            try:
                resolve_secret(smtp, owner=f"smtp {smtp.name!r}")
            except ConfigError as exc:
                problems.append(exc.message)
    return problems


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--check",
    is_flag=True,
    help="One line and the Nagios exit code: 0 ok, 1 warning (a sync failed), "
    "2 critical (no successful sync within [monitoring] stale_after).",
)
@pass_state
def status(state: State, as_json: bool, check: bool) -> None:
    """Accounts, folders, message counts, last sync, archive size, and the scheduled jobs.

    Each job (e.g. sync:work) shows its last run, outcome and next run, computed
    from the configuration and the archive, whether or not `syncer run` is running.
    With --check: is every account current? (for cron, timers and Nagios/Icinga).
    Push shows, per IMAP account, whether `syncer run` holds a push connection
    (NOTIFY or IDLE) and since when.

    \b
    Example:
      syncer status --json
      syncer status --check || mail -s 'syncer is stale' me@example.com
    """
    if check:
        _check(state, as_json)
    from syncer.daemon.push_state import push_status
    from syncer.daemon.scheduler import jobs_status

    config = state.config
    with state.open_store() as store:
        archive = store.status()
        jobs = jobs_status(config, store)
        push = push_status(config, store)
    if as_json:
        emit_json(archive.to_dict() | {"jobs": jobs, "push": push})
        return
    from syncer.cli.render import render_jobs, render_push, render_status

    render_status(archive)
    render_jobs(jobs)
    render_push(push)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def verify(state: State, as_json: bool) -> None:
    """Re-read every stored blob and check its SHA-256; exit 1 on any mismatch.

    \b
    Example:
      syncer verify
    """
    with state.open_store() as store:
        total = store.status().totals.blobs
        with state.progress("Verifying", json_output=as_json, unit="blobs") as progress:
            progress.set_total(total)
            problems = store.verify(progress=progress.advanced)
    if as_json:
        emit_json({"blobs": total, "problems": problems, "ok": not problems})
    else:
        for line in problems:
            click.echo(line)
        click.echo(
            f"{total} blobs checked, {len(problems)} problem{'s' if len(problems) != 1 else ''}."
        )
    if problems:
        sys.exit(1)


def _check(state: State, as_json: bool) -> None:
    """``status --check``: the Nagios line and exit code, never an exception."""
    from syncer.daemon.health import account_health, nagios
    from syncer.errors import SyncerError

    try:
        config = state.config
        with state.open_store() as store:
            healths = account_health(config, store)
    except ConfigError:
        raise
    except SyncerError as exc:
        code, line, healths = 2, f"SYNCER CRITICAL - {exc.message}", []
    else:
        code, line = nagios(healths)
    if as_json:
        emit_json(
            {
                "code": code,
                "status": line,
                "accounts": [
                    {
                        "account": h.account,
                        "state": h.state,
                        "reason": h.reason,
                        "last_success": h.last_success.isoformat() if h.last_success else None,
                        "stale_after_seconds": h.stale_after,
                    }
                    for h in healths
                ],
            }
        )
    else:
        click.echo(line)
    sys.exit(code)


def _masked(url: str) -> str:
    from syncer.archive.engine import mask_url

    return mask_url(url)
