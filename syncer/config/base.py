"""What every configuration section is built from: strict frozen models, durations, secrets.

Why a module of its own: the sections of the file live in the modules of the
features they configure (``config`` holds the archive, accounts and daemon;
later features add theirs), and each needs the same strict base model, the
duration and cron checks and the three-way secret source. The root model in
:mod:`syncer.config.schema` assembles the sections.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

Security = Literal["tls", "starttls", "plain"]

SECRET_KEYS = ("password_env", "password_file", "password_command")
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?]+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> object:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"`` (or a number of seconds) → seconds.

    Anything else is handed on unchanged, for pydantic to reject with its own message.
    """
    if not isinstance(value, str):
        return value
    text = value.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(
            f'{value!r} is not a duration; expected e.g. "30s", "15m", "2h", "1h30m" or "1d"'
        )
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


#: Seconds, written in the file as "30s", "15m", "2h", "1d" (or a bare number of seconds).
Duration = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    """Every model of the file: unknown keys refused, values frozen.

    ``defer_build``: a model's validator is built when something first validates
    with it, not when its class is defined -- a command that reads only the
    ``[archive]`` section (``syncer search``) never builds the account, relay or
    web models (see :func:`syncer.config.schema.load_config`'s ``sections``).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, defer_build=True
    )


class SecretSource(Strict):
    """Where one password comes from: exactly one of the three keys."""

    password_env: str | None = None
    password_file: Path | None = None
    password_command: list[str] | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> SecretSource:
        given = [k for k in SECRET_KEYS if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"two secret sources given ({', '.join(given)}); keep exactly one")
        if self.password_command is not None and not self.password_command:
            raise ValueError("password_command is empty; give the command as a list of words")
        return self

    @property
    def has_secret(self) -> bool:
        return any(getattr(self, k) is not None for k in SECRET_KEYS)


def check_cron(expr: str) -> None:
    """Refuse anything that is not a five-field cron expression (APScheduler checks the rest)."""
    fields = expr.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(
            f"schedule {expr!r} is not a cron expression; expected five fields "
            '("minute hour day month weekday"), e.g. "*/15 * * * *"'
        )


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


def unique_names(items: list[_N]) -> list[_N]:
    """Refuse two entries of one array with the same name: commands, jobs, plans and the
    audit trail all refer to entries by name."""
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"the name {item.name!r} is used twice; give each entry its own")
        seen.add(item.name)
    return items


#: An array of tables whose entries have unique names: ``Annotated[list[X], NAMED]``.
NAMED = AfterValidator(unique_names)
