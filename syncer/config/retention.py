"""The retention sections of the configuration: ``[[retention]]`` policies and
``[retention_settings]``.

Why a module of its own: retention is a feature with its own vocabulary (floors,
deletions, server expunges) and its own safety rules; the root model in
:mod:`syncer.config.schema` only lists the two sections.

A policy names the messages it covers with a search query (``match``; an empty
query covers every message) and says any of three things about them:

* ``keep_min_days``: a floor. Nothing matching is deleted from the archive
  before it is that old, whatever another policy says.
* ``delete_after_days``: delete from the archive once that old. Where several
  policies match, the longest of their periods wins (and any floor beats it).
* ``expunge_server_after_days``: remove from the mail server once archived (and
  verified) and that old, to keep server mailboxes small. The archive keeps it.

Age counts from the message's INTERNALDATE, else its Date header, else when it
was first archived. ``[retention_settings]`` holds the schedule of the
``retention`` job of ``syncer run`` and the safety limit of one run.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from syncer.config.base import NAMED, Strict, check_cron

__all__ = ["RetentionPolicies", "RetentionPolicy", "RetentionSettings", "policies_snapshot"]

#: Keys of a policy that say how long something is kept (compared at start-up).
PERIOD_KEYS = ("keep_min_days", "delete_after_days", "expunge_server_after_days")


class RetentionPolicy(Strict):
    """One ``[[retention]]`` table; see the module docstring."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@-]+$")
    match: str = ""
    keep_min_days: int | None = Field(default=None, ge=0)
    delete_after_days: int | None = Field(default=None, ge=0)
    expunge_server_after_days: int | None = Field(default=None, ge=0)

    @field_validator("match")
    @classmethod
    def _query_parses(cls, value: str) -> str:
        _check_query(value)
        return value

    @model_validator(mode="after")
    def _says_something(self) -> RetentionPolicy:
        if all(getattr(self, key) is None for key in PERIOD_KEYS):
            raise ValueError(
                f"policy {self.name!r} says nothing; give at least one of keep_min_days, "
                "delete_after_days, expunge_server_after_days"
            )
        return self

    def snapshot(self) -> dict[str, Any]:
        """The policy as recorded in the archive (to notice changes at start-up)."""
        return self.model_dump(mode="json")


class RetentionSettings(Strict):
    """``[retention_settings]``: when ``syncer run`` applies the policies, and how much
    one run may delete without ``--force``."""

    # A five-field cron expression; none: `syncer run` does not apply retention.
    schedule: str | None = None
    # The largest share of the archive's messages one run may delete (0.25 = a quarter);
    # a run that would delete more stops and asks for `syncer retention apply --force`.
    max_delete_share: float = Field(default=0.1, ge=0, le=1)
    # Messages deleted per transaction.
    batch_size: int = Field(default=500, ge=1, le=50_000)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            check_cron(value)
        return value


#: The ``[[retention]]`` array, names unique (the root config's field type).
RetentionPolicies = Annotated[list[RetentionPolicy], NAMED]


def policies_snapshot(policies: list[RetentionPolicy]) -> str:
    """Canonical JSON of the policies, as stored in ``job_state`` (retention, policies)."""
    return json.dumps(
        [p.snapshot() for p in policies], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _check_query(text: str) -> None:
    """Parse ``text`` with the search language, so a typo is a configuration error."""
    from syncer.query import QuerySyntaxError, parse

    try:
        parse(text)
    except QuerySyntaxError as exc:
        first = exc.message.splitlines()[0] if exc.message else "not a valid query"
        raise ValueError(f"match {text!r} is not a valid query: {first}") from None
