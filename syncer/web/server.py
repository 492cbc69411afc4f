"""Running the web archive with uvicorn: in the foreground (``syncer serve``) or in a
thread of ``syncer run`` (``[web] enabled = true``).

Why this module exists: both commands build the app the same way (the session
secret read from its secret source, TLS from ``--cert``/``--key`` or the
configuration) and both must stop cleanly: the thread variant is stopped by the
daemon when it shuts down.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import uvicorn

from syncer.secrets import read_secret
from syncer.web.app import create_app

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config

__all__ = ["WebThread", "build_server", "serve"]

log = structlog.get_logger(__name__)
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown (the process then dies
    of the signal); ``syncer serve`` exits 0 instead, like ``syncer run``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _secret(config: Config) -> str | None:
    web = config.web
    if not web.has_session_secret:
        log.warning(
            "web.session_secret_missing",
            hint="Set [web] session_secret_env/_file/_command so sign-ins survive a restart.",
        )
        return None
    return read_secret(
        web.session_secret_env,
        web.session_secret_file,
        web.session_secret_command,
        owner="[web]",
        kind="session_secret",
    )


def build_server(
    config: Config,
    store: ArchiveStore,
    *,
    listen: tuple[str, int] | None = None,
    cert: Path | None = None,
    key: Path | None = None,
) -> uvicorn.Server:
    """A uvicorn server for the web archive (not started)."""
    host, port = listen or config.web.address
    cert = cert or config.web.cert
    key = key or config.web.key
    if cert is not None and config.web.cert is None:
        config = config.model_copy(
            update={"web": config.web.model_copy(update={"cert": cert, "key": key})}
        )
    app = create_app(config, store, secret=_secret(config))
    settings = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
        proxy_headers=False,  # client addresses from trusted proxies: syncer.web.app
        server_header=False,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    return _Server(settings)


def serve(config: Config, store: ArchiveStore, **options: object) -> None:
    """``syncer serve``: run until SIGINT/SIGTERM."""
    server = build_server(config, store, **options)  # type: ignore[arg-type]
    log.info("web.listening", host=server.config.host, port=server.config.port)
    server.run()


class WebThread:
    """The web archive in a thread of ``syncer run``; :meth:`stop` ends it."""

    def __init__(self, config: Config, store: ArchiveStore) -> None:
        self._server = build_server(config, store)
        # uvicorn installs signal handlers only in the main thread: the daemon keeps its own.
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("web.listening", host=self._server.config.host, port=self._server.config.port)

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
