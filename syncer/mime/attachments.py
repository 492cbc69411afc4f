"""The text of attachments, for search: text/*, HTML, PDF, docx, xlsx, pptx, within limits.

Why this module exists: people look for "the contract in that PDF", so the
search index holds the text of attachments as well as their names. Reading a
file sent by a stranger is the riskiest thing normalization does: a PDF or a
zipped Office document can be built to take minutes or gigabytes to read. So:

* Size: attachments over :data:`MAX_INPUT_BYTES` are not read; Office files
  whose members would unpack to more than :data:`MAX_UNZIPPED_BYTES` are
  refused before any library opens them (zip bombs); at most
  :data:`MAX_TEXT_CHARS` of text are kept per attachment and
  :data:`MAX_MESSAGE_CHARS` per message.
* Time: PDF, Office and HTML files are read in a child process
  (``python -m syncer.mime.attachments``, started on first need and kept for
  the next files) that is killed when one file takes longer than
  :data:`TIMEOUT_SECONDS`, and started afresh for the next one. A
  library stuck inside one page or one XML element cannot be interrupted any
  other way (a signal reaches only a process's main thread, and a deadline
  checked between pages does not help within a page). The child also runs
  under an address-space limit (:data:`MEMORY_LIMIT_BYTES`). Plain text is
  decoded in-process: linear work on at most :data:`MAX_INPUT_BYTES`.
* Whatever goes wrong, the message is still normalized; the attachment's
  :attr:`~syncer.mime.parsed.AttachmentText.note` says why its text is missing.

Libraries (maintained): pypdfium2 (PDFium) for PDF; python-docx, openpyxl and
python-pptx (pure Python) for Office Open XML; inscriptis (through
:func:`syncer.mime.text.html_to_text`) for HTML. No SQL here.

Public API: :func:`kind_of`, :func:`extract`, :class:`TextExtractor`
(``with TextExtractor() as extractor: extractor.for_message()``), and
:class:`MessageTexts`, the per-message collector normalization hands to its
MIME walk.
"""

from __future__ import annotations

import io
import json
import os
import select
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from syncer.mime.children import die_with_parent
from syncer.mime.parsed import AttachmentText

__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_MESSAGE_CHARS",
    "MAX_TEXT_CHARS",
    "TIMEOUT_SECONDS",
    "MessageTexts",
    "TextExtractor",
    "extract",
    "kind_of",
]

#: Attachments larger than this (decoded) are not read.
MAX_INPUT_BYTES = 20 * 1024 * 1024
#: Office files whose members add up to more than this when unpacked are not read.
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
#: Characters of text kept per attachment.
MAX_TEXT_CHARS = 500_000
#: Characters of attachment text kept per message.
MAX_MESSAGE_CHARS = 2_000_000
#: Seconds one attachment may take in the child process.
TIMEOUT_SECONDS = 10.0
#: Seconds all attachments of one message may take together.
MESSAGE_SECONDS = 30.0
#: Address space of the child process.
MEMORY_LIMIT_BYTES = 2 * 1024 * 1024 * 1024
#: PDF pages read per file.
MAX_PDF_PAGES = 2000

_OOXML = "application/vnd.openxmlformats-officedocument."
_BY_TYPE = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    _OOXML + "wordprocessingml.document": "docx",
    _OOXML + "spreadsheetml.sheet": "xlsx",
    _OOXML + "presentationml.presentation": "pptx",
    "text/html": "html",
    "application/xhtml+xml": "html",
}
_BY_EXTENSION = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".xlsx": "xlsx",
    ".pptx": "pptx",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".csv": "text",
    ".md": "text",
    ".log": "text",
}
#: Types that are never text even under a text-like name.
_OPAQUE = ("image/", "audio/", "video/", "message/", "multipart/")


def kind_of(content_type: str, filename: str | None) -> str | None:
    """Which extractor reads this attachment: text, html, pdf, docx, xlsx, pptx, or None."""
    ctype = content_type.lower()
    if ctype in _BY_TYPE:
        return _BY_TYPE[ctype]
    if ctype.startswith(_OPAQUE):
        return None
    if ctype.startswith("text/"):
        return "text"
    if filename:
        return _BY_EXTENSION.get(os.path.splitext(filename.lower())[1])
    return None


class _Full(Exception):
    """Enough text collected."""


class _Sink:
    """Collects text up to a number of characters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.cut = False

    def add(self, text: str | None) -> None:
        if not text:
            return
        room = self.limit - self.size
        if len(text) >= room:
            self.parts.append(text[:room])
            self.size = self.limit
            self.cut = True
            raise _Full
        self.parts.append(text)
        self.size += len(text) + 1

    def text(self) -> str:
        return "\n".join(self.parts)


def _check_zip(data: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > MAX_UNZIPPED_BYTES:
        raise ValueError(f"unpacks to {unpacked} bytes, more than {MAX_UNZIPPED_BYTES}")


def _pdf(data: bytes, sink: _Sink) -> None:
    # PDFium (Chrome's PDF library) rather than pure-Python pypdf: 4-6x faster on real and
    # broken PDFs alike, which decided normalization's speed on mail with PDF attachments.
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    document = pdfium.PdfDocument(data)
    try:
        for number in range(min(len(document), MAX_PDF_PAGES)):
            page = document[number]
            textpage = page.get_textpage()
            try:
                sink.add(textpage.get_text_range())
            finally:
                textpage.close()
                page.close()
    finally:
        document.close()


def _docx(data: bytes, sink: _Sink) -> None:
    import docx

    document = docx.Document(io.BytesIO(data))
    for paragraph in document.paragraphs:
        sink.add(paragraph.text)
    for grid in document.tables:
        for row in grid.rows:
            sink.add(" ".join(cell.text for cell in row.cells))


def _xlsx(data: bytes, sink: _Sink) -> None:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        for sheet in book.worksheets:
            sink.add(sheet.title)
            for row in sheet.iter_rows(values_only=True):
                sink.add(" ".join(str(value) for value in row if value is not None))
    finally:
        book.close()


def _pptx(data: bytes, sink: _Sink) -> None:
    import pptx

    deck = pptx.Presentation(io.BytesIO(data))
    for slide in deck.slides:
        for shape in slide.shapes:
            if shape.has_text_frame:
                sink.add(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                for row in shape.table.rows:
                    sink.add(" ".join(cell.text for cell in row.cells))


def _decoded(data: bytes, charset: str | None) -> str:
    from syncer.mime.text import decode_bytes

    return decode_bytes(data, charset)


def extract(kind: str, data: bytes, charset: str | None = None) -> tuple[str, str | None]:
    """Read the text of one attachment in this process: ``(text, note)``.

    No time limit here (see :class:`TextExtractor`); the size limits apply.

    :raises Exception: whatever the library raises for an unreadable file.
    """
    sink = _Sink(MAX_TEXT_CHARS)
    try:
        if kind == "text":
            sink.add(_decoded(data, charset))
        elif kind == "html":
            from syncer.mime.text import html_to_text

            sink.add(html_to_text(_decoded(data, charset)))
        elif kind == "pdf":
            _pdf(data, sink)
        elif kind in ("docx", "xlsx", "pptx"):
            _check_zip(data)
            {"docx": _docx, "xlsx": _xlsx, "pptx": _pptx}[kind](data, sink)
        else:
            raise ValueError(f"no extractor for {kind!r}")
    except _Full:
        pass
    note = f"text cut at {MAX_TEXT_CHARS} characters" if sink.cut else None
    return sink.text().replace("\x00", ""), note


# --------------------------------------------------------------------------- child process

_LENGTH = struct.Struct(">Q")


def _send(stream: Any, header: dict[str, Any], payload: bytes = b"") -> None:
    head = json.dumps(header).encode("utf-8")
    stream.write(_LENGTH.pack(len(head)) + head + _LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _read_exactly(stream: Any, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return bytes(data)


def _serve(parent_pid: int | None = None) -> None:
    """The child: read requests from stdin, answer on stdout, until stdin closes.

    :param parent_pid: the parent's pid; the child dies with it (a SIGKILLed parent
        closes no pipe in time for a child blocked in a parse).
    """
    if parent_pid is not None:
        die_with_parent(parent_pid)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not on Linux
        pass
    stdin = sys.stdin.buffer
    # Answers go to a copy of stdout; stdout itself now goes where stderr goes, so a
    # library that prints cannot break the framing.
    stdout = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _send(stdout, {"ready": True})
    while True:
        try:
            (size,) = _LENGTH.unpack(_read_exactly(stdin, _LENGTH.size))
            header = json.loads(_read_exactly(stdin, size))
            (size,) = _LENGTH.unpack(_read_exactly(stdin, _LENGTH.size))
            data = _read_exactly(stdin, size)
        except EOFError:
            return
        try:
            text, note = extract(header["kind"], data, header.get("charset"))
            _send(stdout, {"text": text, "note": note})
        except MemoryError:
            _send(stdout, {"text": "", "note": "unreadable: needs too much memory"})
        except Exception as exc:
            _send(stdout, {"text": "", "note": f"unreadable: {type(exc).__name__}: {exc}"[:300]})


class _Timeout(Exception):
    pass


class TextExtractor:
    """Extracts attachment text; the risky formats in a child process with a time limit.

    Use as a context manager (the child is stopped on exit), or call
    :meth:`close`. Not thread-safe: one per thread or process.

    :param timeout: seconds one attachment may take (default :data:`TIMEOUT_SECONDS`).
    """

    def __init__(self, *, timeout: float | None = None) -> None:
        self.timeout = TIMEOUT_SECONDS if timeout is None else timeout
        self._child: subprocess.Popen[bytes] | None = None
        self._ready = False  # the child's "ready" line was read

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child process, if one runs."""
        child, self._child = self._child, None
        if child is None:
            return
        try:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
            child.wait()

    def for_message(self) -> MessageTexts:
        """A collector for the attachments of one message (with its per-message limits)."""
        return MessageTexts(self)

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
        """The text of one attachment, or None when its type has no text to extract."""
        kind = kind_of(content_type, filename)
        if kind is None:
            return None
        if len(data) > MAX_INPUT_BYTES:
            return AttachmentText(part_path, "", f"larger than {MAX_INPUT_BYTES} bytes; not read")
        if kind == "text":
            try:
                text, note = extract(kind, data, charset)
            except Exception as exc:  # decoding never should; keep the message anyway
                return AttachmentText(part_path, "", f"unreadable: {type(exc).__name__}")
            return AttachmentText(part_path, text, note)
        limit = self.timeout if timeout is None else min(timeout, self.timeout)
        try:
            answer = self._ask({"kind": kind, "charset": charset}, data, limit)
        except _Timeout:
            self._kill()
            return AttachmentText(part_path, "", f"timed out after {limit:g} s; not read")
        except (OSError, EOFError, ValueError) as exc:
            self._kill()
            return AttachmentText(part_path, "", f"extractor failed: {type(exc).__name__}")
        return AttachmentText(part_path, str(answer.get("text", "")), answer.get("note"))

    # ------------------------------------------------------------------ the child

    def start(self) -> None:
        """Start the child now without waiting for it to be ready.

        Why: its start-up (an interpreter and PDFium, about 0.1 s) is otherwise
        paid by the first attachment that needs it, in the middle of the work;
        started while something else goes on (a sync still downloading), it
        costs nothing on the critical path. The first :meth:`extract` waits
        for the "ready" line as before.
        """
        if self._child is not None and self._child.poll() is None:
            return
        self._child = subprocess.Popen(
            [sys.executable, "-m", "syncer.mime.attachments", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._ready = False

    def _start(self) -> subprocess.Popen[bytes]:
        self.start()
        child = self._child
        assert child is not None
        if not self._ready:
            try:
                self._receive(child, time.monotonic() + 60.0)  # the "ready" line
            except (_Timeout, EOFError):
                self._kill()
                raise
            self._ready = True
        return child

    def _kill(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.kill()
            child.wait()

    def _ask(self, header: dict[str, Any], data: bytes, limit: float) -> dict[str, Any]:
        child = self._start()
        assert child.stdin is not None
        _send(child.stdin, header, data)
        return self._receive(child, time.monotonic() + limit)

    @staticmethod
    def _receive(child: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
        assert child.stdout is not None
        fd = child.stdout.fileno()

        def read(size: int) -> bytes:
            chunks: list[bytes] = []
            while size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                    raise _Timeout
                piece = os.read(fd, min(size, 1 << 20))
                if not piece:
                    raise EOFError
                chunks.append(piece)
                size -= len(piece)
            return b"".join(chunks)

        (size,) = _LENGTH.unpack(read(_LENGTH.size))
        header: dict[str, Any] = json.loads(read(size))
        read(_LENGTH.size)  # the empty payload
        return header


class MessageTexts:
    """The attachment texts of one message, within the per-message limits.

    Normalization's MIME walk calls :meth:`add` for every attachment;
    :meth:`results` gives what was extracted.
    """

    def __init__(self, extractor: TextExtractor) -> None:
        self._extractor = extractor
        self._found: list[AttachmentText] = []
        self._chars = 0
        self._deadline = time.monotonic() + MESSAGE_SECONDS

    def add(
        self,
        part_path: str,
        content_type: str,
        filename: str | None,
        charset: str | None,
        data: bytes,
    ) -> None:
        if kind_of(content_type, filename) is None:
            return
        remaining = self._deadline - time.monotonic()
        if self._chars >= MAX_MESSAGE_CHARS or remaining <= 0:
            self._found.append(
                AttachmentText(part_path, "", "the message's attachment text limit was reached")
            )
            return
        found = self._extractor.extract(
            part_path, content_type, filename, charset, data, timeout=remaining
        )
        if found is None:
            return
        room = MAX_MESSAGE_CHARS - self._chars
        if len(found.text) > room:
            found = AttachmentText(
                part_path, found.text[:room], "the message's attachment text limit was reached"
            )
        self._chars += len(found.text)
        self._found.append(found)

    def results(self) -> tuple[AttachmentText, ...]:
        return tuple(self._found)

    def __iter__(self) -> Iterator[AttachmentText]:
        return iter(self._found)


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else None)
