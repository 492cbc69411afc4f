"""Configuration -> protocol adapter: the one place syncer builds an IMAP, POP3 or SMTP adapter.

Why this exists: the adapters never see the configuration (they take plain
values, a settings object), and the sync runner, retention, ``syncer push``
and the outbox each need one. Building them here, once, keeps the password
and OAuth2 handling, the settings and the error for a wrong protocol in one
place.

The adapters are found through a registry in the vdirsyncer style
(``vdirsyncer/cli/utils.py`` ``_StorageIndex``): :data:`ADAPTERS` maps a
name to ``"module:Class"`` strings for the adapter and its settings, imported
on first use, so ``syncer sync`` of an IMAP account never imports the POP3 or
SMTP code. :func:`build` makes any registered adapter from a configuration
entry; the typed helpers below are what callers use.

Public API: :data:`ADAPTERS`, :func:`build`, :func:`account_values`,
:func:`smtp_values`, :func:`open_source`, :func:`open_maildrop`,
:func:`open_target`, :func:`smtp_settings`, :func:`smtp_relay`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from syncer.errors import SyncerError, UsageError

if TYPE_CHECKING:
    from syncer.config.oauth import OAuth2Config
    from syncer.config.schema import AccountConfig, SMTPConfig
    from syncer.oauth.sasl import TokenProvider
    from syncer.smtp.client import SMTPRelay, SMTPSettings
    from syncer.sources.base import FolderSource, MailDropSource
    from syncer.sources.imap.target import IMAPTarget
    from syncer.sources.imap.watch import IMAPWatcher

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterIndex",
    "account_values",
    "build",
    "open_maildrop",
    "open_source",
    "open_target",
    "open_watcher",
    "smtp_relay",
    "smtp_settings",
    "smtp_values",
]


@dataclass(frozen=True, slots=True)
class Adapter:
    """One registered adapter: its class and the settings class it takes (``module:Class``)."""

    adapter: str
    settings: str
    #: The configured ``protocol`` an account must have to use it (None: an SMTP server).
    protocol: str | None


class AdapterIndex(Mapping[str, Adapter]):
    """Adapter name -> :class:`Adapter`; classes are imported when first asked for."""

    def __init__(self, entries: Mapping[str, Adapter]) -> None:
        self._entries = dict(entries)
        self._loaded: dict[str, type[Any]] = {}

    def __getitem__(self, name: str) -> Adapter:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise SyncerError(f"No adapter named {name!r}; these exist: {known}.") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def load(self, path: str) -> type[Any]:
        """The class named by ``"module:Class"``, imported now if it is not yet."""
        found = self._loaded.get(path)
        if found is None:
            module, _, name = path.partition(":")
            found = self._loaded[path] = getattr(importlib.import_module(module), name)
        return found


#: Every adapter syncer can build from its configuration.
ADAPTERS = AdapterIndex(
    {
        "imap": Adapter(
            "syncer.sources.imap.source:IMAPSource",
            "syncer.sources.imap.settings:IMAPSettings",
            "imap",
        ),
        "imap-target": Adapter(
            "syncer.sources.imap.target:IMAPTarget",
            "syncer.sources.imap.settings:IMAPSettings",
            "imap",
        ),
        "pop3": Adapter(
            "syncer.sources.pop3.source:POP3Source",
            "syncer.sources.pop3.settings:POP3Settings",
            "pop3",
        ),
        "smtp": Adapter("syncer.smtp.client:SMTPRelay", "syncer.smtp.client:SMTPSettings", None),
    }
)


def build(name: str, values: Mapping[str, Any]) -> Any:
    """The adapter ``name`` (not connected), made from its settings ``values``.

    :raises SyncerError: for a name that is not registered.
    """
    entry = ADAPTERS[name]
    settings = ADAPTERS.load(entry.settings)(**values)
    return ADAPTERS.load(entry.adapter)(settings)


# -- accounts (IMAP and POP3) ----------------------------------------------------------------


def _tokens(oauth2: OAuth2Config, *, kind: str, name: str, protocol: str) -> TokenProvider:
    """The OAuth2 token provider for an account or SMTP server (imported only when used)."""
    from syncer.config.tokens import token_provider

    return token_provider(oauth2, kind=kind, name=name, protocol=protocol)


def account_values(account: AccountConfig) -> dict[str, Any]:
    """The settings values every account adapter takes, its password read now.

    :raises ConfigError: when the password cannot be read.
    """
    values: dict[str, Any] = {
        "host": account.host,
        "port": account.effective_port,
        "security": account.security,
        "username": account.username,
        "tls_verify": account.tls_verify,
        "ca_file": str(account.ca_file) if account.ca_file else None,
        "timeout": account.timeout,
        "account": account.name,
    }
    if account.oauth2 is not None:
        values["oauth2"] = _tokens(
            account.oauth2, kind="account", name=account.name, protocol=account.protocol
        )
        values["sasl_mechanism"] = account.oauth2.mechanism
    else:
        from syncer.secrets import resolve_secret

        values["password"] = resolve_secret(account, owner=f"account {account.name!r}")
    if account.protocol == "pop3":
        values["auth"] = account.auth
    else:
        values["namespaces"] = tuple(account.namespaces)
        values["subscribed_only"] = account.subscribed_only
        values["max_bytes_per_second"] = account.max_bytes_per_second
    return values


def _for_account(name: str, account: AccountConfig, wrong: Callable[[], SyncerError]) -> Any:
    if account.protocol != ADAPTERS[name].protocol:
        raise wrong()
    return build(name, account_values(account))


def open_source(account: AccountConfig) -> FolderSource:
    """Connect to the account's IMAP server (logged in, capabilities read).

    :raises ConfigError: when the password cannot be read.
    :raises SourceError: when the server cannot be reached or refuses us.
    """
    source = _for_account(
        "imap",
        account,
        lambda: SyncerError(
            f"Account {account.name!r} is a {account.protocol} account, not IMAP; "
            "open it with open_maildrop()."
        ),
    )
    return cast("FolderSource", source.connect())


def open_maildrop(account: AccountConfig) -> MailDropSource:
    """Connect to the account's POP3 server (secured, logged in, CAPA read).

    :raises ConfigError: when the password cannot be read.
    :raises SourceError: when the server cannot be reached or refuses us.
    """
    source = _for_account(
        "pop3",
        account,
        lambda: SyncerError(
            f"Account {account.name!r} is a {account.protocol} account, not POP3; "
            "open it with open_source()."
        ),
    )
    return cast("MailDropSource", source.connect())


def open_target(account: AccountConfig) -> IMAPTarget:
    """Connect to a configured IMAP account as a push target (the sync session code).

    :raises UsageError: for a POP3 account (POP3 cannot store mail).
    :raises SourceError: when the server cannot be reached or refuses the login.
    """
    target = _for_account(
        "imap-target",
        account,
        lambda: UsageError(
            f"Account {account.name!r} is a {account.protocol} account; push needs an IMAP one.",
        ),
    )
    return cast("IMAPTarget", target.connect())


def open_watcher(
    account: AccountConfig, *, folder: str = "INBOX", notify: bool = True
) -> IMAPWatcher:
    """A watching connection to the account's IMAP server (push mode): NOTIFY where
    offered and ``notify`` is true, else IDLE on ``folder`` (its shown name, ``Archive/2024``).

    :raises ConfigError: when the password cannot be read.
    :raises SourceError: when the server cannot be reached or refuses us.
    """
    if account.protocol != "imap":
        raise UsageError(
            f"Account {account.name!r} is a {account.protocol} account; push mode needs IMAP."
        )
    values = account_values(account)
    from syncer.sources.imap.watch import IMAPWatcher

    return IMAPWatcher(
        values["host"],
        values["port"],
        values["security"],
        values["username"],
        values.get("password", ""),
        tls_verify=values["tls_verify"],
        ca_file=values["ca_file"],
        timeout=values["timeout"],
        account=values["account"],
        oauth2=values.get("oauth2"),
        sasl_mechanism=values.get("sasl_mechanism", "auto"),
        folder=folder,
        notify=notify,
    ).connect()


# -- SMTP servers ----------------------------------------------------------------------------


def smtp_values(server: SMTPConfig) -> dict[str, Any]:
    """The SMTP adapter's values for an ``[[smtp]]`` entry, its password read now.

    :raises ConfigError: when the password source gives nothing.
    """
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.effective_port,
        "security": server.security,
        "username": server.username,
        "tls_verify": server.tls_verify,
        "ca_file": str(server.ca_file.expanduser()) if server.ca_file else None,
        "allow_insecure": server.allow_insecure,
        "timeout": server.timeout,
        "label": server.name,
    }
    if server.username is not None and server.has_secret:
        from syncer.secrets import resolve_secret

        values["password"] = resolve_secret(server, owner=f"smtp {server.name!r}")
    if server.oauth2 is not None:  # OAuth2 (issue 11): a token provider instead
        values["oauth2"] = _tokens(server.oauth2, kind="smtp", name=server.name, protocol="smtp")
        values["sasl_mechanism"] = server.oauth2.mechanism
    return values


def smtp_settings(server: SMTPConfig) -> SMTPSettings:
    """The SMTP adapter's plain values for an ``[[smtp]]`` entry, its password read now.

    :raises ConfigError: when the password source gives nothing.
    """
    settings_class = ADAPTERS.load(ADAPTERS["smtp"].settings)
    return cast("SMTPSettings", settings_class(**smtp_values(server)))


def smtp_relay(server: SMTPConfig) -> SMTPRelay:
    """The relay for an ``[[smtp]]`` entry, not yet connected (``connect()`` opens it).

    :raises ConfigError: when the password source gives nothing.
    """
    return cast("SMTPRelay", build("smtp", smtp_values(server)))
