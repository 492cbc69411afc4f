"""The TOML configuration: found, parsed, validated into frozen pydantic models.

Every problem in a file is collected and raised at once as one ``ConfigError``
(exit status 2), each naming the file, the key path and what was expected. A
command validates only the sections it reads (``load_config(sections=...)``:
``syncer search`` reads ``[archive]`` and ``[logging]``, builds no account
model, and is not stopped by a mistake in ``[web]``); ``syncer config check``
and the daemon validate every section.
Values are never echoed for keys that could hold a secret, and secrets are
never read from the file itself: each comes from an environment variable, a
file or a command, resolved only when a command needs it (``resolve_secret``).

Lookup order for the file: ``--config``, ``$SYNCER_CONFIG``, ``./syncer.toml``,
``$XDG_CONFIG_HOME/syncer/config.toml``.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, TypeVar

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from syncer.config.base import (
    NAMED,
    Duration,
    SecretSource,
    Security,
    Strict,
    check_cron,
)
from syncer.config.oauth import OAuth2Config, anchor_token_file
from syncer.config.providers import Provider, apply_preset
from syncer.config.relay import Digests, Forwards, OutboxConfig
from syncer.config.retention import RetentionPolicies, RetentionSettings
from syncer.config.web import WebConfig
from syncer.errors import ConfigError

POP3Auth = Literal["password", "apop", "sasl-plain"]
#: ``auth`` values: the POP3 mechanisms, and OAuth2 (IMAP and POP3; see config_oauth).
AccountAuth = Literal["password", "apop", "sasl-plain", "oauth2"]
Namespace = Literal["personal", "other", "shared"]
_PERSONAL_ONLY: tuple[Namespace, ...] = ("personal",)

_DEFAULT_PORTS: dict[tuple[str, str], int] = {
    ("imap", "tls"): 993,
    ("imap", "starttls"): 143,
    ("imap", "plain"): 143,
    ("pop3", "tls"): 995,
    ("pop3", "starttls"): 110,
    ("pop3", "plain"): 110,
    ("smtp", "tls"): 465,
    ("smtp", "starttls"): 587,
    ("smtp", "plain"): 25,
}

#: Keys that mean something only for protocol = "pop3" (and auth, but for auth = "oauth2").
_POP3_KEYS = ("leave_on_server", "delete_after_days", "delete_after_archive", "auth")
#: Keys that mean something only for protocol = "imap" (a maildrop has no folders).
_IMAP_KEYS = (
    "folders",
    "namespaces",
    "subscribed_only",
    "full_scan_days",
    "max_bytes_per_second",
    "push",
    "idle_folders",
    "max_bytes_per_day",
)


class ArchiveConfig(Strict):
    url: str = "sqlite:///archive.db"
    blob_store: str = "db"
    # Check DKIM signatures ourselves while normalizing (DNS lookups; see syncer.mime.normalize).
    verify_dkim: bool = False

    @field_validator("blob_store")
    @classmethod
    def _blob_store_form(cls, value: str) -> str:
        if value != "db" and not (value.startswith("fs:") and len(value) > 3):
            raise ValueError('expected "db" or "fs:/path/to/blobs"')
        return value

    @field_validator("url")
    @classmethod
    def _url_form(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
            raise ValueError(
                'expected a database URL such as "sqlite:///archive.db" or '
                '"postgresql://user@host/dbname"'
            )
        return value


class FolderFilter(Strict):
    """Glob patterns over shown names (``Archive/*``: personal prefix off, ``/`` between
    levels, :mod:`syncer.sources.folder_names`); exclude wins over include."""

    include: list[str] = Field(default_factory=lambda: ["*"])
    exclude: list[str] = Field(default_factory=list)
    # RFC 6154 attributes (\\Junk, \\Trash, ...) of folders to leave out whatever their
    # (localized) names; the provider presets set these (syncer/config/providers.py).
    exclude_special_use: list[str] = Field(default_factory=list)


class AccountConfig(SecretSource):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@-]+$")
    # Defaults for Gmail or Microsoft 365 (syncer/config/providers.py, docs/servers.md).
    provider: Provider | None = None
    protocol: Literal["imap", "pop3"] = "imap"
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "tls"
    username: str = Field(min_length=1)
    tls_verify: bool = True
    ca_file: Path | None = None
    allow_insecure: bool = False
    timeout: float = Field(default=60.0, gt=0)
    # When `syncer run` syncs the account: a cron expression or an interval, not both;
    # neither means every [scheduler] default_every.
    schedule: str | None = None
    every: Duration | None = Field(default=None, gt=0)
    folders: FolderFilter = Field(default_factory=FolderFilter)
    namespaces: list[Namespace] = Field(default_factory=lambda: list(_PERSONAL_ONLY))
    subscribed_only: bool = False
    full_scan_days: float = Field(default=7.0, ge=0)
    batch_messages: int = Field(default=500, ge=1, le=100_000)
    batch_bytes: int = Field(default=32 * 1024 * 1024, ge=64 * 1024)
    max_bytes_per_second: int | None = Field(default=None, ge=1024)
    # Bytes a day this account may download (Gmail: about 2.5 GB); a run that reaches it
    # stops after its batch and the next run continues once a day has passed.
    max_bytes_per_day: int | None = Field(default=None, ge=1024)
    retries: int = Field(default=3, ge=0, le=20)
    # `syncer run` keeps a connection open and syncs a folder seconds after it changes
    # (syncer/daemon/push.py); None: on where the server offers NOTIFY or IDLE.
    push: bool | None = None
    # Without NOTIFY: folders (shown names, "Archive/2024") IDLEd on besides INBOX, one each.
    # Nine at most: Dovecot allows 10 connections per user and address by default.
    idle_folders: list[str] = Field(default_factory=list, max_length=9)
    # POP3 only (see _pop3_rules): deleting from the server needs leave_on_server = false
    # *and* one of delete_after_archive / delete_after_days, so it is never a slip.
    leave_on_server: bool = True
    delete_after_days: int | None = Field(default=None, ge=0)
    delete_after_archive: bool = False
    auth: AccountAuth = "password"
    # auth = "oauth2": where the access tokens come from (syncer/config_oauth.py).
    oauth2: OAuth2Config | None = None

    @model_validator(mode="before")
    @classmethod
    def _provider_preset(cls, data: Any) -> Any:
        return apply_preset(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _account_rules(self) -> AccountConfig:
        if self.auth == "oauth2" or self.oauth2 is not None:
            _oauth2_rules(self)
        elif not self.has_secret:
            raise ValueError(
                "no password source; set one of password_env, password_file, password_command"
            )
        if self.security == "plain" and not self.allow_insecure:
            secret = "access token" if self.auth == "oauth2" else "password"
            raise ValueError(
                f'security = "plain" would send the {secret} unencrypted; use "tls" or '
                '"starttls", or set allow_insecure = true on this account if the network '
                "is trusted"
            )
        if self.schedule is not None:
            check_cron(self.schedule)
            if self.every is not None:
                raise ValueError(
                    "schedule and every both say when to sync; keep one (schedule is a cron "
                    'expression, every an interval such as "15m")'
                )
        return self

    @model_validator(mode="after")
    def _pop3_rules(self) -> AccountConfig:
        if self.protocol != "pop3":
            given = [
                k
                for k in _POP3_KEYS
                if k in self.model_fields_set and not (k == "auth" and self.auth == "oauth2")
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} only for "
                    f'protocol = "pop3" accounts; remove {"it" if len(given) == 1 else "them"} '
                    f"from this {self.protocol} account"
                )
            return self
        imap_only = [k for k in _IMAP_KEYS if k in self.model_fields_set]
        if imap_only:
            raise ValueError(
                f"{', '.join(imap_only)} {'does' if len(imap_only) == 1 else 'do'} not apply to "
                "a pop3 account (a maildrop is one INBOX, downloaded whole); remove "
                f"{'it' if len(imap_only) == 1 else 'them'}"
            )
        when = [
            key
            for key, on in (
                ("delete_after_archive = true", self.delete_after_archive),
                (
                    f"delete_after_days = {self.delete_after_days}",
                    self.delete_after_days is not None,
                ),
            )
            if on
        ]
        if len(when) == 2:
            raise ValueError(
                "delete_after_archive = true and delete_after_days contradict each other; "
                "keep one: delete_after_archive deletes as soon as a message is archived, "
                "delete_after_days = N once it has been archived for N days"
            )
        if when and self.leave_on_server:
            raise ValueError(
                f"{when[0]} deletes mail from the server, but leave_on_server is true "
                f"({'as set' if 'leave_on_server' in self.model_fields_set else 'the default'}); "
                "set leave_on_server = false as well to confirm, or remove "
                f"{when[0].split(' =')[0]}"
            )
        if not when and not self.leave_on_server:
            raise ValueError(
                "leave_on_server = false needs to know when to delete: add "
                "delete_after_archive = true (as soon as a message is archived) or "
                "delete_after_days = N (once it has been archived for N days)"
            )
        return self

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS[(self.protocol, self.security)]


def _oauth2_rules(account: AccountConfig) -> None:
    """auth = "oauth2" and an [accounts.oauth2] table go together, without a password."""
    if account.auth != "oauth2":
        raise ValueError(
            f'an [accounts.oauth2] table needs auth = "oauth2" (auth is {account.auth!r}); '
            "set it, or remove the table"
        )
    if account.oauth2 is None:
        raise ValueError(
            'auth = "oauth2" needs an [accounts.oauth2] table (provider, client_id, ...) '
            "or token_command in it"
        )
    if account.has_secret:
        raise ValueError(
            'auth = "oauth2" signs in with access tokens; remove the password source '
            "(password_env, password_file or password_command)"
        )


class SMTPConfig(SecretSource):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@-]+$")
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "starttls"
    username: str | None = None
    tls_verify: bool = True
    ca_file: Path | None = None
    allow_insecure: bool = False
    timeout: float = Field(default=60.0, gt=0)
    # OAuth2 sign-in instead of a password (issue 11; syncer/config_oauth.py).
    oauth2: OAuth2Config | None = None

    @model_validator(mode="after")
    def _smtp_rules(self) -> SMTPConfig:
        if self.oauth2 is not None:
            if self.username is None or self.has_secret:
                raise ValueError(
                    "an [smtp.oauth2] table needs username (the account the token is for) "
                    "and no password source"
                )
        elif self.username is not None and not self.has_secret:
            raise ValueError("username given without a password source")
        if self.security == "plain" and self.username is not None and not self.allow_insecure:
            raise ValueError(
                'security = "plain" with authentication would send the password unencrypted; '
                'use "tls" or "starttls", or set allow_insecure = true'
            )
        return self

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS[("smtp", self.security)]


class LoggingConfig(Strict):
    # None: warning on stderr (each command prints its summary; cron mails nothing when all
    # went well); info for `syncer run`, the daemon, whose journal is the record.
    level: Literal["debug", "info", "warning", "error"] | None = None
    format: Literal["auto", "json", "console"] = "auto"
    # Off a terminal, long commands log a `progress` event this often (syncer.progress).
    progress_every: Duration = Field(default=10.0, gt=0)


class SchedulerConfig(Strict):
    """How `syncer run` schedules jobs and shares accounts with other workers."""

    # Accounts with neither schedule nor every are synced this often.
    default_every: Duration = Field(default=15 * 60.0, gt=0)
    # On SIGTERM/SIGINT: how long the batch in flight may take to commit before exiting.
    grace_period: Duration = Field(default=30.0, ge=0)
    # A run that is late by more than this (machine asleep, every thread busy) is skipped.
    misfire_grace_time: Duration = Field(default=5 * 60.0, gt=0)
    # How long an account's lease lasts without renewal (a dead worker's accounts wait this long).
    lease_ttl: Duration = Field(default=5 * 60.0, ge=2)
    # How often a running sync renews its lease (default: a fifth of lease_ttl).
    heartbeat: Duration | None = Field(default=None, gt=0)
    # Jobs run at once by one `syncer run` process.
    threads: int = Field(default=4, ge=1, le=64)
    # How often the normalize job catches up with messages synced but not yet normalized.
    normalize_every: Duration = Field(default=5 * 60.0, gt=0)
    # While an account's push connection (NOTIFY) is up, its scheduled poll runs only
    # every Nth time: a safety net for a lost notification, not the way mail arrives.
    push_poll_factor: int = Field(default=4, ge=1, le=1000)

    @property
    def heartbeat_seconds(self) -> float:
        return self.heartbeat if self.heartbeat is not None else self.lease_ttl / 5

    @model_validator(mode="after")
    def _heartbeat_within_ttl(self) -> SchedulerConfig:
        if self.heartbeat is not None and self.heartbeat * 2 > self.lease_ttl:
            raise ValueError(
                f"heartbeat ({self.heartbeat:g}s) must be at most half of lease_ttl "
                f"({self.lease_ttl:g}s), or a busy worker could lose its lease between renewals"
            )
        return self


class MetricsConfig(Strict):
    """The optional HTTP endpoint of `syncer run`: /metrics (Prometheus) and /healthz."""

    listen: str | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f'expected "host:port", e.g. "127.0.0.1:9108" (got {value!r})')
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, brackets of an IPv6 literal removed; None when off."""
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class MonitoringConfig(Strict):
    """Alerting on an archive that silently stopped (syncer.daemon.health)."""

    # An account whose last successful sync is older than this is stale: /healthz 503,
    # `status --check` critical. Default: three of the account's intervals.
    stale_after: Duration | None = Field(default=None, gt=0)
    # Called (GET) after each successful `syncer run --once` / daemon sync round,
    # healthchecks-style; "<ping_url>/fail" when a job failed.
    ping_url: str | None = None

    @field_validator("ping_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL (got {value!r})")
        return value


class _Root(Strict):
    """What a file is validated as: :class:`Config` (every section), or a model of only
    the sections a command reads (:func:`_sections_model`), so both report the same
    errors for the same section."""

    @model_validator(mode="after")
    def _relay_references(self) -> _Root:
        fields = type(self).model_fields
        read: dict[str, Any] = {
            s: getattr(self, s) for s in ("smtp", "digests", "forwards") if s in fields
        }
        if "smtp" in read:  # a command reading digests or forwards reads smtp too
            problems = _relay_problems(read.pop("smtp"), read)
            if problems:
                raise ValueError("; ".join(problems))
        return self


class Config(_Root):
    archive: ArchiveConfig = Field(default_factory=ArchiveConfig)
    accounts: Annotated[list[AccountConfig], NAMED] = Field(default_factory=list)
    smtp: Annotated[list[SMTPConfig], NAMED] = Field(default_factory=list)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    retention: RetentionPolicies = Field(default_factory=list)
    retention_settings: RetentionSettings = Field(default_factory=RetentionSettings)
    digests: Digests = Field(default_factory=list)
    forwards: Forwards = Field(default_factory=list)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    path: Path | None = Field(default=None, exclude=True)

    def account(self, name: str) -> AccountConfig:
        """The account called ``name``; the error lists the configured ones."""
        for acc in self.accounts:
            if acc.name == name:
                return acc
        known = ", ".join(a.name for a in self.accounts) or "none"
        raise ConfigError(
            f"No account named {name!r} in {self.path}. These are the configured accounts: {known}."
        )

    @property
    def archive_url(self) -> str:
        """The database URL, with a relative SQLite path taken from the config file's folder."""
        return _anchor_sqlite_url(self.archive.url, self.base_dir)

    @property
    def blob_store(self) -> str:
        spec = self.archive.blob_store
        if spec.startswith("fs:"):
            root = Path(spec[3:]).expanduser()
            if not root.is_absolute():
                root = self.base_dir / root
            return f"fs:{root}"
        return spec

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


def _anchor_sqlite_url(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return url
    path = Path(url[len(prefix) :]).expanduser()
    if not path.is_absolute():
        path = base / path
    return prefix + str(path)


def find_config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """Where the configuration lives, in the documented lookup order."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("SYNCER_CONFIG")
    if env:
        return Path(env)
    local = Path("syncer.toml")
    if local.exists():
        return local
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    candidate = xdg / "syncer" / "config.toml"
    if candidate.exists():
        return candidate
    raise ConfigError(
        "No configuration file found (looked at --config, $SYNCER_CONFIG, ./syncer.toml and "
        f"{candidate}).",
        hint="Write a starter with `syncer config init` (or see `syncer config example`).",
    )


#: The sections every command reads: where the archive is, and how to log.
BASE_SECTIONS: frozenset[str] = frozenset({"archive", "logging"})
#: Sections read together with another: a digest or forward names an ``[[smtp]]`` server.
_READ_WITH = {"digests": ("smtp",), "forwards": ("smtp",)}


def load_config(
    explicit: str | os.PathLike[str] | None = None, *, sections: Iterable[str] | None = None
) -> Config:
    """Find, parse and validate the configuration file.

    :param sections: validate only these top-level sections (and
        :data:`BASE_SECTIONS`), with the same models and the same errors as the whole
        file: a command reads what it uses (``syncer search`` builds no account
        model). The other sections of the returned :class:`Config` refuse any use
        (:class:`_Unread`). None (``syncer config check``, the daemon): every section.
    :raises ConfigError: listing every problem, each prefixed with the file.
    """
    path = find_config_path(explicit)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    return parse_config(data, path=path.resolve(), sections=sections)


def parse_config(
    data: Mapping[str, Any], *, path: Path | None = None, sections: Iterable[str] | None = None
) -> Config:
    """Validate an already-parsed TOML document (``sections``: see :func:`load_config`)."""
    read = None if sections is None else _with_companions(sections)
    if read is None:
        config = _validate(Config, data, data, path)
    else:
        # Unknown top-level keys stay in, to be refused as they are when reading every section.
        given = {k: v for k, v in data.items() if k in read or k not in Config.model_fields}
        part = _validate(_sections_model(read), given, data, path)
        values = {
            name: getattr(part, name) if name in read else _Unread(name)
            for name in Config.model_fields
            if name != "path"
        }
        config = Config.model_construct(part.model_fields_set, **values)
    return _anchor_token_files(config.model_copy(update={"path": path}), read)


_R = TypeVar("_R", bound="_Root")


def _validate(
    model: type[_R], given: Mapping[str, Any], data: Mapping[str, Any], path: Path | None
) -> _R:
    """``given`` (all or part of the file's ``data``) as ``model``; its problems as one error."""
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        where = f"{path}: " if path else ""
        raise ConfigError([where + p for p in _describe(exc, data)]) from None


def _with_companions(sections: Iterable[str]) -> frozenset[str]:
    """``sections``, the base sections and what is read with them; unknown names refused."""
    wanted = set(sections) | BASE_SECTIONS
    unknown = wanted - (Config.model_fields.keys() - {"path"})
    if unknown:
        raise ValueError(f"not sections of the configuration: {sorted(unknown)}")
    for name in list(wanted):
        wanted.update(_READ_WITH.get(name, ()))
    return frozenset(wanted)


@functools.cache
def _sections_model(sections: frozenset[str]) -> type[_Root]:
    """A root model of only ``sections``: :class:`Config`'s own fields, validators and
    errors, without building the models of the sections left out."""
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in Config.model_fields.items()
        if name in sections
    }
    return create_model("ConfigSections", __base__=_Root, __module__=__name__, **fields)


class _Unread:
    """Stands in a :class:`Config` for a section its command did not read
    (:func:`load_config`'s ``sections``): any use of it is a bug in that command,
    said at once rather than read silently as the defaults."""

    __slots__ = ("section",)

    def __init__(self, section: str) -> None:
        self.section = section

    def _refuse(self) -> NoReturn:
        raise RuntimeError(
            f"the [{self.section}] section was not read: the command must name it in "
            "load_config(sections=...)"
        )

    def __getattr__(self, _name: str) -> NoReturn:
        self._refuse()

    def __iter__(self) -> NoReturn:
        self._refuse()

    def __len__(self) -> NoReturn:
        self._refuse()

    def __bool__(self) -> NoReturn:
        self._refuse()

    def __repr__(self) -> str:
        return f"<[{self.section}] not read>"


def _anchor_token_files(config: Config, read: frozenset[str] | None) -> Config:
    """Give every OAuth2 token file an absolute path (default: beside the archive), in
    the sections read (``read``; None: all)."""
    kinds = [k for k in ("accounts", "smtp") if read is None or k in read]
    if not any(entry.oauth2 for kind in kinds for entry in getattr(config, kind)):
        return config
    url = config.archive_url
    archive_dir = config.base_dir
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        archive_dir = Path(url[len("sqlite:///") :]).parent
    return config.model_copy(
        update={
            kind: [
                entry
                if entry.oauth2 is None
                else entry.model_copy(
                    update={"oauth2": anchor_token_file(entry.oauth2, archive_dir, config.base_dir)}
                )
                for entry in getattr(config, kind)
            ]
            for kind in kinds
        }
    )


def _describe(exc: ValidationError, data: Mapping[str, Any]) -> list[str]:
    """Turn pydantic's errors into 'key path: what was expected' lines, no secrets."""
    problems: list[str] = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        key = _key_path(loc, data)
        kind = err["type"]
        leaf = str(loc[-1]) if loc else ""
        if kind == "extra_forbidden":
            msg = f"unknown key {leaf!r}"
            nearest = _nearest_key(leaf)
            if nearest:
                msg += f" (did you mean {nearest!r}?)"
            if "oauth2" in loc and re.search(r"secret", leaf, re.I):
                msg += (
                    "; secrets are never written in the file: use client_secret_env, "
                    "client_secret_file or client_secret_command"
                )
            elif "oauth2" in loc and re.search(r"token", leaf, re.I):
                msg += (
                    "; tokens are never written in the file: `syncer auth login` stores "
                    "them, or token_command prints one"
                )
            elif re.search(r"pass|secret|token", leaf, re.I):
                msg += (
                    "; secrets are never written in the file: use password_env, "
                    "password_file or password_command"
                )
            key = _key_path(loc[:-1], data)
            problems.append(f"{key}: {msg}" if key else msg)
            continue
        if kind == "missing":
            problems.append(f"{key}: required key is missing")
            continue
        message = err["msg"].removeprefix("Value error, ")
        shows_input = kind.endswith(("_type", "_parsing")) or kind == "literal_error"
        if shows_input and not re.search(r"pass|secret|token", leaf, re.I):
            message += f" (got {err['input']!r})"
        problems.append(f"{key}: {message}" if key else message)
    return problems


def _nearest_key(key: str) -> str | None:
    """The valid key closest to a misspelt one (``usrname`` -> ``username``), if any is close.

    Compared with every key of every section: the misspelling rarely lands in a
    different section's key, and a suggestion from the right one is what helps.
    """
    import difflib

    known: set[str] = set()
    pending: list[type[BaseModel]] = [Strict]
    while pending:
        model = pending.pop()
        known.update(model.model_fields)
        pending.extend(model.__subclasses__())
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return close[0] if close else None


def _key_path(loc: Sequence[Any], data: Mapping[str, Any]) -> str:
    """``('accounts', 0, 'port')`` → ``accounts[0] (work).port``, naming the entry."""
    out = ""
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                out += f" ({node['name']})"
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _relay_problems(smtp: list[SMTPConfig], sections: Mapping[str, Any]) -> list[str]:
    """Digests and forwards (``sections``: name -> entries) that name an ``[[smtp]]``
    server the file does not have."""
    known = [s.name for s in smtp]
    listed = ", ".join(known) or "none"
    problems: list[str] = []
    for section, items in sections.items():
        for index, item in enumerate(items):
            if item.smtp not in known:
                problems.append(
                    f"{section}[{index}] ({item.name}).smtp: no [[smtp]] named {item.smtp!r} "
                    f"(configured: {listed})"
                )
    return problems
