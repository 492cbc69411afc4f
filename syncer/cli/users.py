"""``syncer user``: the people who may use the web archive, their roles, passwords and tokens.

Why a module of its own: ``syncer.cli.app`` only registers it (lazily, see
``_FEATURE_COMMANDS``). Passwords are read from standard input or a hidden
prompt, never from an argument (it would sit in the shell history and the process
list), hashed with argon2id by :mod:`syncer.web.auth` and stored as hashes; a
token is printed once and stored as its SHA-256. Every change is audited.
"""

from __future__ import annotations

import sys

import click

from syncer.archive.store_users import ROLES
from syncer.cli.context import State, emit_json, pass_state
from syncer.cli.retention import actor

__all__ = ["user_group"]


@click.group("user")
def user_group() -> None:
    """Users of the web archive (`syncer serve`): add, list, remove, passwd, token."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.UsageError("The password must have at least 8 characters.")
    return password


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@click.option(
    "--account",
    "accounts",
    multiple=True,
    metavar="ACCOUNT",
    help="An account a reader may see (repeatable); auditors and admins see all.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_state
def user_add(
    state: State, name: str, role: str, accounts: tuple[str, ...], password_stdin: bool
) -> None:
    """Add a user of the web archive.

    \b
    Example:
      syncer user add alice --role reader --account work --password-stdin < pw.txt
      syncer user add root --role admin
    """
    from syncer.web.auth import hash_password

    if not name.strip() or len(name) > 200:
        raise click.UsageError("A user name must have 1 to 200 characters.")
    if role != "reader" and accounts:
        raise click.UsageError(f"An {role} sees every account; --account is for readers.")
    password = _read_password(password_stdin)
    with state.open_store() as store:
        store.add_user(name, role, hash_password(password), accounts, actor=actor())
    click.echo(f"Added {role} {name!r}" + (f" with {', '.join(accounts)}." if accounts else "."))


@user_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def user_list(state: State, as_json: bool) -> None:
    """List the users with their roles and accounts.

    \b
    Example:
      syncer user list --json
    """
    with state.open_store() as store:
        users = store.users()
    rows = [
        {
            "name": u.name,
            "role": u.role,
            "accounts": list(u.accounts) if not u.sees_all else ["*"],
            "created_at": u.created_at.isoformat(),
        }
        for u in users
    ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("No users. Add one with `syncer user add NAME --role admin`.")
    for row in rows:
        click.echo(f"{row['name']:20} {row['role']:8} {', '.join(row['accounts'])}")


@user_group.command("remove")
@click.argument("name")
@pass_state
def user_remove(state: State, name: str) -> None:
    """Remove a user with its grants and API tokens.

    \b
    Example:
      syncer user remove alice
    """
    with state.open_store() as store:
        store.remove_user(name, actor=actor())
    click.echo(f"Removed user {name!r}.")


@user_group.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_state
def user_passwd(state: State, name: str, password_stdin: bool) -> None:
    """Set a user's password (and lift a sign-in lockout).

    \b
    Example:
      syncer user passwd alice --password-stdin < pw.txt
    """
    from syncer.web.auth import hash_password

    password = _read_password(password_stdin)
    with state.open_store() as store:
        store.set_password(name, hash_password(password), actor=actor())
    click.echo(f"Changed the password of {name!r}.")


@user_group.command("token")
@click.argument("name")
@pass_state
def user_token(state: State, name: str) -> None:
    """Create an API token for NAME and print it once (the archive keeps only its hash).

    Use it as `Authorization: Bearer TOKEN` with the JSON API (docs/api.md).

    \b
    Example:
      syncer user token alice
    """
    from syncer.web.auth import new_token, token_digest

    token = new_token()
    with state.open_store() as store:
        store.add_token(name, token_digest(token), actor=actor())
    click.echo(token)
