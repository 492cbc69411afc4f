"""``syncer init``, ``db upgrade|current``, ``config check``, ``status`` and ``verify``:
setting up the archive and looking after it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from syncer.cli.context import State, emit_json, pass_state
from syncer.errors import ConfigError

if TYPE_CHECKING:
    pass


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
    click.echo(f"Archive ready at {_masked(state.config.archive_url)} (schema {rev}).")


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

    engine = make_engine(state.config.archive_url)
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

    engine = make_engine(state.config.archive_url)
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
    """Configuration file checks."""


@config_group.command("check")
@click.option("--secrets/--no-secrets", default=True, help="Also resolve every password source.")
@pass_state
def config_check(state: State, secrets: bool) -> None:
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
        if problems:
            raise ConfigError(problems)
    from syncer.daemon.scheduler import build_jobs

    jobs = build_jobs(cfg)  # every schedule as `syncer run` reads it
    click.echo(
        f"{cfg.path}: OK ({len(cfg.accounts)} accounts, {len(cfg.smtp)} SMTP servers, "
        f"{len(jobs)} scheduled jobs)."
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Accounts, folders, message counts, last sync, archive size, and the scheduled jobs.

    Each job (e.g. sync:work) shows its last run, outcome and next run, computed
    from the configuration and the archive, whether or not `syncer run` is running.
    Push shows, per IMAP account, whether `syncer run` holds a push connection
    (NOTIFY or IDLE) and since when.

    \b
    Example:
      syncer status --json
    """
    from syncer.daemon.push import push_status
    from syncer.daemon.scheduler import jobs_status

    with state.open_store() as store:
        data = store.status()
        data["jobs"] = jobs_status(state.config, store)
        data["push"] = push_status(state.config, store)
    if as_json:
        emit_json(data)
        return
    from syncer.cli.render import render_jobs, render_push, render_status

    render_status(data)
    render_jobs(data["jobs"])
    render_push(data["push"])


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
        problems = store.verify()
        total = store.status()["totals"]["blobs"]
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


def _masked(url: str) -> str:
    from syncer.archive.engine import mask_url

    return mask_url(url)
