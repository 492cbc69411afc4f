"""The part of the normalization stage that runs in its worker processes.

Why this module exists apart from :mod:`syncer.sync.normalize`: a worker
process imports only this module and what the work needs (the normalizer and
the index document), not structlog, multiprocessing or the stage's machinery:
each worker is smaller and starts sooner. Pure functions of the raw bytes;
nothing here touches the archive.

A worker is ``python -c 'from syncer.sync.normalize_work import serve; serve()' PID``
on two pipes (:mod:`syncer.sync.normalize_pool` starts it), speaking in frames
(:func:`send_frame`, :func:`read_frame`): a kind byte, a length, the payload.

* parent -> worker: first ``O``, the options (pickled ``(verify_dkim, dialect)``);
  then ``M``, one raw message as it is (no pickled copy of the bytes on either side);
* worker -> parent: ``R``, that message's result (a pickled :data:`Done`), after
  which the parent sends the next ``M``; or, before it, ``X``: an attachment to
  read (pickled ``(part_path, content_type, filename, charset, timeout)`` then
  an ``M`` frame with its bytes), answered by ``A`` (a pickled
  ``AttachmentText | None``).

One message at a time, so a worker holds one raw message and its parse, never
a whole task (the process tree's memory bound).

The attachments whose reading is risky (PDF, Office, HTML) are read by the
parent's one extractor child for all the workers, with its time limit, kill
and restart (:class:`~syncer.mime.attachments.TextExtractor`), rather than by
an extractor child per worker: the process tree's memory is bounded
(docs/performance.md, "Memory of the process tree").

Public API: :func:`normalize_one`, :func:`failed`, :func:`release_heap`,
:func:`limit_heap_arenas`, :func:`fix_heap_thresholds`, :func:`serve`, :func:`send_frame`,
:func:`read_frame`, :func:`read_expected`, :data:`Done`.
"""

from __future__ import annotations

import struct
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncer.archive.search.document import IndexRow
    from syncer.mime.attachments import TextExtractor
    from syncer.mime.auth import DNSFunc
    from syncer.mime.parsed import AttachmentText, NormalizedMessage

#: One normalized message and its search index rows.
Done = tuple["NormalizedMessage", "list[IndexRow]"]

#: A worker gives its freed heap back after a message of at least this many raw bytes.
_TRIM_AFTER_BYTES = 1024 * 1024
#: glibc's ``malloc_trim`` once looked up (False: not available).
_TRIM: Any = None
#: glibc's ``mallopt`` parameters: the number of heaps (arenas) threads allocate from,
#: the size from which a block is mapped on its own, the free top of a heap kept.
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3
_M_TRIM_THRESHOLD = -1
#: Blocks of at least this many bytes (a large message, a decoded attachment, a
#: download batch's bodies) get pages of their own, returned to the system when freed.
MMAP_THRESHOLD = 1024 * 1024
#: A frame's head: its kind (one byte) and its payload's length.
_HEAD = struct.Struct(">cQ")


def send_frame(stream: IO[bytes], kind: bytes, payload: bytes = b"", *, flush: bool = True) -> None:
    """Write one frame; ``flush=False`` when more frames of the same message follow."""
    stream.write(_HEAD.pack(kind, len(payload)))
    stream.write(payload)
    if flush:
        stream.flush()


def read_frame(stream: IO[bytes]) -> tuple[bytes, bytes]:
    """The next frame's kind and payload.

    :raises EOFError: when the other side closed the pipe (or died) before a whole frame.
    """
    head = stream.read(_HEAD.size)
    if len(head) != _HEAD.size:
        raise EOFError("the pipe closed")
    kind, size = _HEAD.unpack(head)
    payload = stream.read(size) if size else b""
    if len(payload) != size:
        raise EOFError("the pipe closed mid-frame")
    return kind, payload


def read_expected(stream: IO[bytes], kind: bytes) -> bytes:
    """The payload of the next frame, which must be of ``kind``.

    :raises EOFError: at the end of the pipe, or on a frame of another kind
        (the two sides no longer agree: the pipe is treated as closed).
    """
    got, payload = read_frame(stream)
    if got != kind:
        raise EOFError(f"expected a {kind!r} frame, got {got!r}")
    return payload


def serve() -> None:
    """A worker process's main loop: read tasks from stdin, answer on stdout, until stdin closes.

    ``sys.argv[1]`` is the parent's pid: the worker dies with it. Ctrl-C is the
    parent's to handle (it closes the pipes, which ends this loop).
    """
    import os
    import pickle
    import signal
    import sys

    from syncer.mime.children import die_with_parent

    die_with_parent(int(sys.argv[1]))
    fix_heap_thresholds()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox = sys.stdin.buffer
    # Frames go to a copy of stdout; stdout itself now goes where stderr goes, so
    # anything that prints cannot break the framing.
    outbox = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    extractor = _forwarding_extractor(inbox, outbox)
    try:
        verify_dkim, dialect = pickle.loads(read_expected(inbox, b"O"))
        while True:
            raw = read_expected(inbox, b"M")
            large = len(raw) >= _TRIM_AFTER_BYTES
            done = normalize_one(raw, verify_dkim, None, extractor, dialect)
            del raw
            send_frame(outbox, b"R", pickle.dumps(done, pickle.HIGHEST_PROTOCOL))
            del done
            if large:
                release_heap()  # after large messages only: each trim costs page faults
    except EOFError:
        return


def _forwarding_extractor(inbox: IO[bytes], outbox: IO[bytes]) -> TextExtractor:
    """A :class:`TextExtractor` that hands the formats its child would read to the parent.

    Plain text and what is too large to read are decided here, exactly as the
    extractor decides them (no child is involved); the rest goes to the
    parent's one extractor child, whose answer (text, or the note saying why
    there is none) is this extractor's answer.
    """
    import pickle

    from syncer.mime.attachments import MAX_INPUT_BYTES, TextExtractor, kind_of

    class Forwarding(TextExtractor):
        def extract(
            self,
            part_path: str,
            content_type: str,
            filename: str | None,
            charset: str | None,
            data: bytes,
            *,
            timeout: float | None = None,
        ) -> AttachmentText | None:
            kind = kind_of(content_type, filename)
            if kind in (None, "text") or len(data) > MAX_INPUT_BYTES:
                return super().extract(
                    part_path, content_type, filename, charset, data, timeout=timeout
                )
            request = (part_path, content_type, filename, charset, timeout)
            send_frame(outbox, b"X", pickle.dumps(request), flush=False)
            send_frame(outbox, b"M", data)
            answer: AttachmentText | None = pickle.loads(read_expected(inbox, b"A"))
            return answer

    return Forwarding()


def release_heap() -> None:
    """Hand the task's freed heap back to the system (glibc's ``malloc_trim``).

    Why: a task's parse trees and decoded attachments are freed when it ends,
    but glibc keeps the pages, so each worker stayed at the high-water
    mark of its largest task for the rest of the run (the process tree's peak
    RSS is bounded, docs/performance.md); the saving process likewise after
    each batch's results. Trimming costs well under a millisecond. Elsewhere
    than glibc this does nothing.
    """
    global _TRIM
    if _TRIM is None:
        import ctypes

        try:
            _TRIM = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


def limit_heap_arenas() -> None:
    """Have every thread of this process allocate from one glibc heap (``M_ARENA_MAX``).

    Why: the default sync's saving process runs the download, the follower,
    the pool's threads and the archive's compression threads; glibc gives
    threads heaps of their own, and each kept the freed pages of the batches
    it had held (about 15 MB more at the process's peak on the 10,000-message
    corpus, docs/performance.md). Call it before those threads start; the
    contention it adds is not measurable there (they mostly wait on pipes,
    sockets and SQLite). Elsewhere than glibc this does nothing.
    """
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1)


def fix_heap_thresholds() -> None:
    """Map blocks of :data:`MMAP_THRESHOLD` bytes and more on their own, whatever was freed before.

    Why: glibc maps a block of 128 KiB or more on its own, but each time such a
    block is freed it raises that threshold to the block's size (up to 32 MiB)
    and the heap's trim threshold to twice that. After the first
    multi-megabyte message, later ones were carved out of the heap, whose freed
    pages a process keeps between trims: the saving process held about 10 MB more
    at the process tree's peak on the 10,000-message corpus (docs/performance.md,
    "Memory of the process tree, second round"). Setting the thresholds also stops
    that adjustment. Call it in each process of the tree that handles messages.
    Elsewhere than glibc this does nothing.
    """
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        mallopt = ctypes.CDLL(None).mallopt
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD)


def normalize_one(
    raw: bytes,
    verify_dkim: bool,
    dns: DNSFunc | None,
    extractor: TextExtractor | None,
    dialect: str,
) -> Done:
    from syncer.archive.search.document import index_document
    from syncer.mime.normalize import normalize

    try:
        result = normalize(raw, verify_dkim=verify_dkim, dns=dns, extractor=extractor)
    except Exception as exc:  # pragma: no cover - normalize() catches everything itself
        result = failed(f"{type(exc).__name__}: {exc}")
    return result, index_document(dialect, result)


def failed(error: str) -> NormalizedMessage:
    from syncer.mime.parsed import NORMALIZER_VERSION, NormalizedMessage

    return NormalizedMessage(version=NORMALIZER_VERSION, status="failed", error=error)
