"""Loopback TCP proxies for fault tests.

:class:`CuttingProxy` forwards to a real server and, when armed, closes both
sides after it has passed ``cut_after`` bytes from the server to the client:
exactly what a dropped connection in the middle of a large FETCH looks like to
a client. :class:`TripwireProxy` acts at exact protocol points instead: it
calls back (e.g. to SIGKILL the client) before forwarding a given command, or
rewrites the server's answer to one.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Self


def _close_listener(listener: socket.socket) -> None:
    # close() alone does not wake a thread blocked in accept() on Linux; shutdown() does.
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()


def _close_pair(*sockets: socket.socket) -> None:
    for s in sockets:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()


class _LoopbackProxy(ABC):
    """Listens on a free loopback port and hands each connection, with a fresh
    upstream connection to the target, to :meth:`_start_session`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        _close_listener(self._listener)
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._start_session(client, socket.create_connection(self.target))

    @abstractmethod
    def _start_session(self, client: socket.socket, upstream: socket.socket) -> None:
        """Relay one connection (each proxy decides how)."""


class CuttingProxy(_LoopbackProxy):
    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self.cut_after: int | None = None
        self.cuts = 0

    def _start_session(self, client: socket.socket, upstream: socket.socket) -> None:
        limit = self.cut_after
        threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, limit), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        passed = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and passed + len(data) >= limit:
                    dst.sendall(data[: max(limit - passed, 0)])
                    self.cuts += 1
                    break
                dst.sendall(data)
                passed += len(data)
        except OSError:
            pass
        finally:
            _close_pair(src, dst)


class TripwireProxy(_LoopbackProxy):
    """A loopback proxy for line-based protocols that acts at exact protocol points.

    It forwards to a real server and watches what the client sends, line by line
    (in clear: use it with plain POP3/IMAP, not TLS):

    - :meth:`trip_on` calls a callback *before* forwarding the ``nth`` client
      line that starts with a command (``b"RETR"``, ``b"DELE"``, ``b"QUIT"``),
      then drops that line and closes both sides. With a callback that SIGKILLs
      the client, the client dies exactly there: at the (n)th ``RETR`` it has
      received n-1 whole answers; at ``QUIT`` it has sent every ``DELE`` but the
      server never sees the QUIT.
    - :meth:`rewrite_answer_to` passes the server's multi-line answer to the
      ``nth`` client line starting with a command through a function before
      forwarding it (e.g. to drop bytes from a RETR answer, as a server that
      truncates a message would).

    Each new connection starts counting afresh; ``fired`` counts trips.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self._trip: tuple[bytes, int, Callable[[], None]] | None = None
        self._rewrite: tuple[bytes, int, Callable[[bytes], bytes]] | None = None
        self.fired = 0

    def trip_on(self, command: bytes, nth: int, callback: Callable[[], None]) -> None:
        self._trip = (command.upper(), nth, callback)

    def rewrite_answer_to(
        self, command: bytes, nth: int, rewrite: Callable[[bytes], bytes]
    ) -> None:
        self._rewrite = (command.upper(), nth, rewrite)

    def disarm(self) -> None:
        self._trip = self._rewrite = None

    def _start_session(self, client: socket.socket, upstream: socket.socket) -> None:
        session = _TripwireSession(self, client, upstream)
        threading.Thread(target=session.client_to_server, daemon=True).start()
        threading.Thread(target=session.server_to_client, daemon=True).start()


class _TripwireSession:
    """One proxied connection of a :class:`TripwireProxy`."""

    def __init__(
        self, proxy: TripwireProxy, client: socket.socket, upstream: socket.socket
    ) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.trip = proxy._trip
        self.rewrite = proxy._rewrite
        self.counts: dict[bytes, int] = {}
        # Set by the client side when the answer to the rewritten command is due next.
        self.rewrite_next = threading.Event()

    def _close(self) -> None:
        _close_pair(self.client, self.upstream)

    def client_to_server(self) -> None:
        pending = b""
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                pending += data
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    if not self._line(line + b"\n"):
                        return
        except OSError:
            pass
        finally:
            self._close()

    def _line(self, line: bytes) -> bool:
        """Forward one client line; False once the tripwire fired."""
        word = line.split(b" ", 1)[0].strip().upper()
        count = self.counts[word] = self.counts.get(word, 0) + 1
        if self.trip is not None and (word, count) == self.trip[:2]:
            self.trip[2]()
            self.proxy.fired += 1
            return False
        if self.rewrite is not None and (word, count) == self.rewrite[:2]:
            self.rewrite_next.set()
        self.upstream.sendall(line)
        return True

    def server_to_client(self) -> None:
        try:
            while True:
                data = self.upstream.recv(65536)
                if not data:
                    break
                # The client side sets the event before it forwards the command, so the
                # first bytes that arrive afterwards begin the answer to rewrite.
                if self.rewrite is not None and self.rewrite_next.is_set():
                    self.rewrite_next.clear()
                    data = self.rewrite[2](self._read_answer(data))
                self.client.sendall(data)
        except OSError:
            pass
        finally:
            self._close()

    def _read_answer(self, answer: bytes) -> bytes:
        """Read on until ``answer`` is whole: a -ERR line, or "+OK" and lines up to the "." line."""
        while not (
            answer.endswith(b"\r\n.\r\n") or (answer.startswith(b"-ERR") and b"\r\n" in answer)
        ):
            data = self.upstream.recv(65536)
            if not data:
                break
            answer += data
        return answer
