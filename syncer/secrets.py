"""Reading a password from where the config says it lives: env, file or command.

Secrets are resolved only when a command needs them, and every value read is
registered with the log redactor (``syncer.logs.register_secret``) so it can
never appear in a log line, even if a library echoes it back.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Protocol

from syncer.errors import ConfigError
from syncer.logs import register_secret


class SecretSource(Protocol):
    """Where a password lives: exactly one of the three is set (``config.base.SecretSource``)."""

    @property
    def password_env(self) -> str | None: ...
    @property
    def password_file(self) -> Path | None: ...
    @property
    def password_command(self) -> list[str] | None: ...


def resolve_secret(source: SecretSource, *, owner: str) -> str:
    """Return the password described by ``source``.

    :param owner: how to name the entry in messages, e.g. ``account 'work'``.
    :raises ConfigError: when the variable, file or command gives nothing usable.
    """
    return read_secret(
        source.password_env, source.password_file, source.password_command, owner=owner
    )


def read_secret(
    env: str | None,
    file: Path | None,
    command: list[str] | None,
    *,
    owner: str,
    kind: str = "password",
) -> str:
    """Return the secret from an environment variable, a file or a command (the one given).

    :param kind: the keys' prefix in messages: ``password`` (``password_env`` ...), or
        ``client_secret`` for an OAuth2 client secret.
    :raises ConfigError: when the variable, file or command gives nothing usable.
    """
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(
                f"{owner}: environment variable {env} ({kind}_env) is not set.",
                hint=f"Export it before running syncer, or use {kind}_file / {kind}_command.",
            )
    elif file is not None:
        try:
            value = file.expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{owner}: cannot read {kind}_file {file} ({exc.strerror}).",
                hint="Check the path and its permissions.",
            ) from None
        value = value.rstrip("\r\n")
    elif command is not None:
        value = run_secret_command(command, owner, key=f"{kind}_command")
    else:
        raise ConfigError(f"{owner}: no {kind} source configured.")
    if not value:
        raise ConfigError(f"{owner}: the {kind} source gave an empty {kind.replace('_', ' ')}.")
    register_secret(value)
    return value


def run_secret_command(argv: list[str], owner: str, *, key: str = "password_command") -> str:
    """The first line a secret command prints (not registered with the redactor: callers do).

    :raises ConfigError: when the command is missing, fails or hangs for 60 s.
    """
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False
        )
    except FileNotFoundError:
        raise ConfigError(
            f"{owner}: {key} {argv[0]!r} was not found.",
            hint="Give the full path or install the program.",
        ) from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{owner}: {key} {argv[0]!r} did not finish in 60 s.") from None
    if done.returncode != 0:
        # stderr may be shown: the secret goes to stdout, never to stderr, by convention.
        err = done.stderr.strip().splitlines()[-1:] if done.stderr.strip() else []
        tail = f": {err[0]}" if err else ""
        raise ConfigError(f"{owner}: {key} {argv[0]!r} exited with status {done.returncode}{tail}.")
    return done.stdout.splitlines()[0] if done.stdout else ""
