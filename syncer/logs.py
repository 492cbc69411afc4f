"""structlog set-up, called once from the CLI, plus secret redaction.

JSON lines when stdout is not a terminal (for journald and log shippers),
a readable console rendering when it is. Standard-library loggers
(imapclient, sqlalchemy, alembic, apscheduler) go through the same pipeline.
Context (``run_id``, ``account``, ``folder``) is bound with contextvars so
every event of a run carries it.
"""

from __future__ import annotations

import json as _json
import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any


def _import_structlog_without_rich() -> None:
    """Import structlog with rich hidden from it, when this process has not loaded either.

    Why: structlog imports rich (and through it pygments and attrs) whenever it is
    installed, for its rich tracebacks and pretty-printed locals -- about a tenth of
    every ``syncer`` start-up. syncer uses neither: the console renderer is given
    a plain traceback formatter and the JSON one never shows locals (see
    :func:`renderers`). The commands that draw tables import rich themselves, later.
    """
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` fail
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]


_import_structlog_without_rich()

import structlog  # noqa: E402
from structlog.tracebacks import ExceptionDictTransformer  # noqa: E402

_SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|authori[sz]ation|api[_-]?key", re.I)
_SECRET_INLINE = re.compile(
    r"((?:pass(?:word|wd)?|secret|token|api[_-]?key)\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)"
    r"|(Bearer\s+)\S+",
    re.I,
)
_REDACTED = "***"
_known_secrets: set[str] = set()
#: How many short-lived secrets (OAuth2 access and refresh tokens, codes) are kept: a daemon
#: refreshing tokens for months would otherwise scan thousands of dead tokens per log line.
#: The newest are kept; a token that many refreshes old is long expired.
MAX_ROTATING_SECRETS = 256
_rotating_secrets: dict[str, None] = {}
_secrets_lock = threading.Lock()


def register_secret(value: str, *, rotating: bool = False) -> None:
    """Remember a secret so that no log line can ever contain it.

    :param rotating: a secret that is replaced over time (an OAuth2 token): only the
        newest :data:`MAX_ROTATING_SECRETS` of these are kept. Passwords and client
        secrets are kept for the life of the process.
    """
    if len(value) < 3:
        return
    with _secrets_lock:
        if not rotating:
            _known_secrets.add(value)
            return
        _rotating_secrets.pop(value, None)
        _rotating_secrets[value] = None
        while len(_rotating_secrets) > MAX_ROTATING_SECRETS:
            del _rotating_secrets[next(iter(_rotating_secrets))]


def redact_text(text: str) -> str:
    """Mask known secrets and anything shaped like ``password=...`` in ``text``.

    A secret is also found in its escaped spellings (``repr``, JSON, both), as a
    rendered log line carries it: a quote, backslash or non-ASCII character in a
    password changes its bytes on the line.
    """
    with _secrets_lock:
        secrets = [*_known_secrets, *_rotating_secrets]
    for secret in secrets:
        for spelling in _spellings(secret):
            if spelling in text:
                text = text.replace(spelling, _REDACTED)
    return _SECRET_INLINE.sub(lambda m: (m.group(1) or m.group(3) or "") + _REDACTED, text)


def _spellings(secret: str) -> dict[str, None]:
    """``secret`` as it appears raw, in a ``repr``, in JSON, and in JSON of a ``repr``."""
    in_repr = repr(secret)[1:-1]
    forms = [secret, in_repr, _json.dumps(secret)[1:-1], _json.dumps(in_repr)[1:-1]]
    return dict.fromkeys(form for form in forms if form)


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) and value not in (None, ""):
        return _REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(key, v) for v in value)
    return value


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: masks secrets by key and by value before rendering."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


def redact_rendered(_logger: Any, _method: str, rendered: str | bytes) -> str | bytes:
    """The last processor, after the renderer: masks secrets in the whole rendered line.

    Whatever a renderer adds (a traceback, an exception's repr of its arguments,
    a library's message) passes through here; redacting the event dict alone
    misses what is rendered from outside it.
    """
    if isinstance(rendered, bytes):
        return redact_text(rendered.decode("utf-8", "replace")).encode("utf-8")
    return redact_text(rendered)


def renderers(*, json: bool, colors: bool = False) -> list[Any]:
    """The processors that turn an event into its line: render, then redact.

    Tracebacks never carry frame locals (structlog shows them by default, and a
    password in scope would reach the log); the console prints a plain traceback.
    """
    if json:
        no_locals = ExceptionDictTransformer(show_locals=False)
        return [
            structlog.processors.ExceptionRenderer(no_locals),
            structlog.processors.JSONRenderer(),
            redact_rendered,
        ]
    console = structlog.dev.ConsoleRenderer(
        colors=colors, exception_formatter=structlog.dev.plain_traceback
    )
    return [console, redact_rendered]


#: The logger of :mod:`syncer.progress`: its ``progress`` events are info, yet they reach
#: stderr off a terminal even when info lines do not (a long run must never look stuck).
PROGRESS_LOGGER = "syncer.progress"


def configure(
    verbosity: int = 0,
    *,
    json: bool | None = None,
    level: str | None = None,
    quiet: bool = False,
    log_file: str | None = None,
    default_level: str = "warning",
) -> None:
    """Configure structlog and the stdlib bridge.

    stderr gets warnings and errors by default, on a terminal and off it: every
    command prints its own summary, and a cron job that succeeded prints nothing (so
    cron mails nothing). Long work adds a ``progress`` event every interval off a
    terminal. ``-v`` or ``[logging] level = "info"`` bring the info lines (one per run
    and folder) back; ``syncer run`` (the daemon) defaults to info, its journal being
    the record. ``--log-file`` keeps JSON lines at info (or the configured level) in a
    file, whatever stderr shows.

    :param verbosity: 1 → info, 2 → debug, 3 → debug for libraries too.
    :param json: force JSON (True) or console (False) output; None decides by ``isatty``.
    :param level: the configured level (``[logging] level``).
    :param quiet: errors only on stderr, no progress (``-q``).
    :param log_file: also append JSON lines to this file.
    :param default_level: the stderr level when neither ``level`` nor ``-v`` says.
    """
    if json is None:
        json = not sys.stderr.isatty()
    base = getattr(logging, (level or default_level).upper())
    stderr_level = {0: base, 1: min(base, logging.INFO)}.get(verbosity, logging.DEBUG)
    if quiet:
        stderr_level = logging.ERROR
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_processor,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    # Logs go to stderr so that `--json` data on stdout stays machine-readable.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(shared, json=json))
    handler.addFilter(_StderrFilter(stderr_level, progress=not quiet))
    handlers: list[logging.Handler] = [handler]
    lowest = stderr_level if quiet else min(stderr_level, logging.INFO)
    if log_file:
        file_level = min(getattr(logging, (level or "info").upper()), stderr_level)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(_formatter(shared, json=True))
        to_file.setLevel(file_level)
        handlers.append(to_file)
        lowest = min(lowest, file_level)
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = handlers
    root.setLevel(lowest)
    library_level = logging.DEBUG if verbosity >= 3 else logging.WARNING
    for noisy in ("imapclient", "imapclient.imaplib", "sqlalchemy", "alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(library_level)


def _formatter(shared: list[Any], *, json: bool) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *renderers(json=json, colors=not json and sys.stderr.isatty()),
        ],
    )


class _StderrFilter(logging.Filter):
    """stderr's level, with the progress events let through (unless ``-q``)."""

    def __init__(self, level: int, *, progress: bool) -> None:
        super().__init__()
        self.level, self.progress = level, progress

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.level:
            return True
        return self.progress and record.name == PROGRESS_LOGGER and record.levelno >= logging.INFO
