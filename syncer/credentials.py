"""Reading a password from where the config says it lives: env, file or command.

Secrets are resolved only when a command needs them, and every value read is
registered with the log redactor (``syncer.logs.register_secret``) so it can
never appear in a log line, even if a library echoes it back.
"""

from __future__ import annotations

import os
import subprocess

from syncer.config_base import SecretSource
from syncer.errors import ConfigError
from syncer.logs import register_secret


def resolve_secret(source: SecretSource, *, owner: str) -> str:
    """Return the password described by ``source``.

    :param owner: how to name the entry in messages, e.g. ``account 'work'``.
    :raises ConfigError: when the variable, file or command gives nothing usable.
    """
    if source.password_env is not None:
        value = os.environ.get(source.password_env)
        if value is None:
            raise ConfigError(
                f"{owner}: environment variable {source.password_env} (password_env) is not set.",
                hint="Export it before running syncer, or use password_file / password_command.",
            )
    elif source.password_file is not None:
        try:
            value = source.password_file.expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{owner}: cannot read password_file {source.password_file} ({exc.strerror}).",
                hint="Check the path and its permissions.",
            ) from None
        value = value.rstrip("\r\n")
    elif source.password_command is not None:
        value = _run_password_command(source.password_command, owner)
    else:
        raise ConfigError(f"{owner}: no password source configured.")
    if not value:
        raise ConfigError(f"{owner}: the password source gave an empty password.")
    register_secret(value)
    return value


def _run_password_command(argv: list[str], owner: str) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False
        )
    except FileNotFoundError:
        raise ConfigError(
            f"{owner}: password_command {argv[0]!r} was not found.",
            hint="Give the full path or install the program.",
        ) from None
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"{owner}: password_command {argv[0]!r} did not finish in 60 s."
        ) from None
    if done.returncode != 0:
        # stderr may be shown: the secret goes to stdout, never to stderr, by convention.
        err = done.stderr.strip().splitlines()[-1:] if done.stderr.strip() else []
        tail = f": {err[0]}" if err else ""
        raise ConfigError(
            f"{owner}: password_command {argv[0]!r} exited with status {done.returncode}{tail}."
        )
    return done.stdout.splitlines()[0] if done.stdout else ""
