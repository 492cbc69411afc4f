"""The ``syncer auth login|status|logout`` commands: OAuth2 sign-in for accounts and SMTP servers.

Thin commands over :mod:`syncer.oauth`: ``login`` runs the device flow or the
browser (PKCE, loopback) flow the account's ``[accounts.oauth2]`` table calls
for and stores the tokens; ``status`` reads the token store and never prints a
token; ``logout`` forgets the stored tokens (it does not revoke them at the
provider: do that in the provider's account settings if the machine was lost).

NAME is an account name, or an ``[[smtp]]`` server's; ``account:NAME`` and
``smtp:NAME`` pick one when both have the name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from syncer.cli.context import State, emit_json, pass_state
from syncer.errors import UsageError

if TYPE_CHECKING:
    from syncer.config.oauth import OAuth2Config
    from syncer.config.schema import Config


def _targets(config: Config) -> list[tuple[str, str, str, OAuth2Config | None]]:
    """(kind, name, protocol, oauth2 table) of every account and SMTP server."""
    found: list[tuple[str, str, str, OAuth2Config | None]] = [
        ("account", a.name, a.protocol, a.oauth2) for a in config.accounts
    ]
    for smtp in config.smtp:
        found.append(("smtp", smtp.name, "smtp", getattr(smtp, "oauth2", None)))
    return found


def _find(config: Config, name: str) -> tuple[str, str, str, OAuth2Config]:
    kind_wanted, _, bare = name.rpartition(":")
    if kind_wanted not in ("", "account", "smtp"):
        kind_wanted, bare = "", name
    matches = [t for t in _targets(config) if t[1] == bare and kind_wanted in ("", t[0])]
    if not matches:
        known = ", ".join(f"{k}:{n}" for k, n, _p, o in _targets(config) if o) or "none"
        raise UsageError(
            f"No account or SMTP server named {bare!r} in {config.path}. "
            f"These sign in with OAuth2: {known}."
        )
    if len(matches) > 1:
        raise UsageError(
            f"Both an account and an SMTP server are named {bare!r}; say account:{bare} "
            f"or smtp:{bare}."
        )
    kind, found, protocol, oauth2 = matches[0]
    if oauth2 is None:
        raise UsageError(
            f"{kind.capitalize()} {found!r} does not sign in with OAuth2; give it "
            'auth = "oauth2" and an oauth2 table first.'
        )
    return kind, found, protocol, oauth2


def _when(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@click.group("auth")
def auth_group() -> None:
    """OAuth2 sign-in for accounts and SMTP servers with auth = "oauth2"."""


@auth_group.command("login")
@click.argument("name")
@click.option(
    "--no-browser", is_flag=True, help="Only print the sign-in URL; do not open a browser."
)
@pass_state
def auth_login(state: State, name: str, no_browser: bool) -> None:
    """Sign NAME in (device code, or a browser) and store its tokens.

    \b
    Example:
      syncer auth login work
      syncer auth login smtp:relay
    """
    from syncer.config.tokens import stored_tokens
    from syncer.oauth.device import device_flow
    from syncer.oauth.loopback import browser_flow

    kind, found, protocol, oauth2 = _find(state.config, name)
    if oauth2.token_command is not None:
        raise UsageError(
            f"{kind.capitalize()} {found!r} gets its tokens from token_command; sign in "
            "with that tool instead."
        )
    provider = stored_tokens(oauth2, kind=kind, name=found, protocol=protocol)

    def say(text: str) -> None:
        click.echo(text, err=True)

    if oauth2.sign_in_flow == "device":
        tokens = device_flow(provider.client, say)
    else:
        opener = None
        if not no_browser:
            import webbrowser

            opener = webbrowser.open
        tokens = browser_flow(provider.client, say, open_browser=opener)
    provider.login(tokens)
    until = _when(tokens.expires_at)
    click.echo(
        f"Signed in {kind} {found!r}; tokens stored in {provider.store.where}"
        + (f" (access token valid until {until})." if until else ".")
    )
    if tokens.refresh_token is None:
        click.echo(
            "Warning: the provider issued no refresh token, so you will have to sign in "
            "again when the access token expires (check the scopes: Microsoft needs "
            "offline_access).",
            err=True,
        )


@auth_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def auth_status(state: State, as_json: bool) -> None:
    """Show, per OAuth2 account and SMTP server, whether a token is stored and until when.

    Tokens themselves are never shown.

    \b
    Example:
      syncer auth status --json
    """
    import time

    from syncer.config.tokens import stored_tokens

    rows: list[dict[str, Any]] = []
    now = time.time()
    for kind, name, protocol, oauth2 in _targets(state.config):
        if oauth2 is None:
            continue
        row: dict[str, Any] = {"kind": kind, "name": name, "provider": oauth2.provider}
        if oauth2.token_command is not None:
            row.update(store="token_command", present=None, refreshable=None, expires_at=None)
        else:
            provider = stored_tokens(oauth2, kind=kind, name=name, protocol=protocol)
            status = provider.status()
            row.update(
                store=provider.store.where,
                present=status.present,
                refreshable=status.refreshable,
                expires_at=_when(status.expires_at),
                expired=status.expires_at is not None and status.expires_at <= now,
                signed_in_at=_when(status.obtained_at),
            )
        rows.append(row)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo('No account or SMTP server uses auth = "oauth2".')
    for row in rows:
        label = f"{row['kind']} {row['name']} ({row['provider']})"
        if row["store"] == "token_command":
            click.echo(f"{label}: tokens from token_command")
        elif not row["present"]:
            click.echo(f"{label}: not signed in (run `syncer auth login {row['name']}`)")
        else:
            state_word = "expired" if row["expired"] else "valid"
            refresh = "refreshable" if row["refreshable"] else "no refresh token"
            click.echo(
                f"{label}: signed in; access token {state_word} until {row['expires_at']}, "
                f"{refresh}; in {row['store']}"
            )


@auth_group.command("logout")
@click.argument("name")
@pass_state
def auth_logout(state: State, name: str) -> None:
    """Forget NAME's stored tokens (revoke the app's access at the provider as well if
    the machine was lost).

    \b
    Example:
      syncer auth logout work
    """
    from syncer.config.tokens import stored_tokens

    kind, found, protocol, oauth2 = _find(state.config, name)
    if oauth2.token_command is not None:
        raise UsageError(f"{kind.capitalize()} {found!r} stores no tokens (token_command).")
    provider = stored_tokens(oauth2, kind=kind, name=found, protocol=protocol)
    if provider.logout():
        click.echo(
            f"Signed out {kind} {found!r}; its tokens were removed from {provider.store.where}."
        )
    else:
        click.echo(f"{kind.capitalize()} {found!r} had no stored tokens.")
