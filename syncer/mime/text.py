"""Text decoding for the normalizer: charsets, RFC 2047 encoded-words, 8-bit headers, HTML.

Why this module exists: real mail labels its charsets wrongly or not at all,
splits multi-byte characters across encoded-words, puts raw 8-bit bytes in
headers, and names charsets Python does not know. Every function here returns
text and never raises; the normalizer (:mod:`syncer.mime.normalize`) builds on them.

Decoding order for a byte string (:func:`decode_bytes`):

1. pure ASCII (without ISO-2022 escapes) is ASCII, whatever the label says;
2. a label for a Latin single-byte charset (``us-ascii``, ``iso-8859-1``,
   ``windows-1252`` ...) is tried *after* UTF-8: valid multi-byte UTF-8 is almost
   never Latin-1 text, while UTF-8 labelled Latin-1 is common;
3. the label itself, read as the superset real software writes under that name
   (the WHATWG Encoding Standard's rule: ``euc-kr`` → CP949, ``gb2312`` → GB18030,
   ``shift_jis`` → CP932, ``iso-8859-1`` → windows-1252 ...);
4. UTF-8, then the charsets declared elsewhere in the message (``hints``);
5. for missing or unknown labels: windows-1252 when at most a third of the bytes
   are 8-bit (Latin-script text), else charset-normalizer's guess;
6. the label (or windows-1252) with replacement characters.

Public API: :func:`decode_bytes`, :func:`codec_for`, :func:`decode_words`,
:func:`header_text`, :func:`html_to_text`, :func:`html_text`, :func:`safe_filename`,
:func:`strip_surrogates`.
"""

from __future__ import annotations

import binascii
import codecs
import re
import unicodedata
from collections.abc import Iterable

# Labels Python does not know, as mail software writes them.
_ALIASES = {
    "x-sjis": "cp932",
    "x-gbk": "gbk",
    "x-euc-jp": "euc_jp",
    "x-euc-kr": "cp949",
    "iso-8859-8-i": "iso8859_8",
    "iso-8859-6-i": "iso8859_6",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-user-defined": "cp1252",
    "unicode-1-1-utf-8": "utf-8",
    "utf8mb4": "utf-8",
    "x-unicode20utf8": "utf-8",
    "ks_c_5601": "cp949",
    "ks_c_5601-1987": "cp949",
    "ksc5601": "cp949",
    "x-windows-949": "cp949",
    "gb_2312-80": "gb18030",
    "chinese": "gb18030",
    "csgb2312": "gb18030",
    "x-big5": "big5hkscs",
}

# What to try, in order, for a codec Python found for a label (see the module docstring).
_SUPERSETS: dict[str, tuple[str, ...]] = {
    "ascii": ("cp1252",),
    "iso8859-1": ("cp1252",),
    "iso8859-9": ("cp1254",),
    "iso8859-11": ("cp874",),
    "tis-620": ("cp874",),
    "euc_kr": ("cp949",),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "big5": ("big5hkscs",),
    "cp950": ("big5hkscs",),
    "shift_jis": ("cp932", "shift_jis_2004"),
    "euc_jp": ("euc_jp", "euc_jis_2004"),
    "iso2022_jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2004", "iso2022_jp_2"),
}

# Single-byte Latin codecs under whose label UTF-8 often travels: UTF-8 is tried first.
_LATIN = frozenset(
    {"ascii", "cp1252", "iso8859-1", "iso8859-15", "cp1254", "iso8859-9", "iso8859-2", "cp1250"}
)
# Codecs whose encoded text is 7-bit: an ASCII-only input is not necessarily ASCII text.
_SEVEN_BIT = frozenset(
    {"utf-7", "iso2022_jp", "iso2022_kr", "iso2022_jp_2", "iso2022_jp_ext", "hz"}
)
# Codecs that are not text encodings at all (rot13, base64, zlib ...): never used as charsets.
_TEXT_ENCODING = re.compile(r"^[\w.:-]{1,40}$")


def codec_for(label: str | None) -> str | None:
    """Python's codec name for a charset label from a mail, or None when unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").strip().lower()
    if "*" in label:  # RFC 2231 language suffix: utf-8*en
        label = label.split("*", 1)[0]
    if not _TEXT_ENCODING.match(label):
        return None
    label = _ALIASES.get(label, label)
    for candidate in (label, label[2:] if label.startswith("x-") else None):
        if not candidate:
            continue
        try:
            info = codecs.lookup(candidate)
        except LookupError:
            continue
        if not getattr(info, "_is_text_encoding", True):
            return None
        return info.name
    return None


def _candidates(codec: str | None, hints: Iterable[str]) -> list[str]:
    order: list[str] = []
    if codec is not None:
        supersets = _SUPERSETS.get(codec, (codec,))
        if codec in _LATIN or supersets[0] in _LATIN:
            order.append("utf-8")
        order.extend(supersets)
    order.append("utf-8")
    order.extend(hint for hint in hints if hint)
    return list(dict.fromkeys(order))


def decode_bytes(data: bytes, charset: str | None = None, hints: Iterable[str] = ()) -> str:
    """``data`` as text, whatever its label; never raises (see the module docstring).

    :param charset: the declared charset label, as written in the mail.
    :param hints: Python codec names declared elsewhere in the message, tried
        after the label and UTF-8.
    """
    codec = codec_for(charset)
    if data.isascii() and b"\x1b" not in data and codec not in _SEVEN_BIT:
        return data.decode("ascii")
    expanded: list[str] = []
    for hint in hints:
        expanded.extend(_SUPERSETS.get(hint, (hint,)))
    for name in _candidates(codec, expanded):
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    if codec is None and _mostly_ascii(data):
        # Latin-script text: a few accented letters among ASCII. Guessers get short or
        # sparse inputs like "Caf\xe9" wrong; Windows-1252 is what such mail is written in.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    guessed = _guess(data)
    if guessed is not None:
        return guessed
    fallback = _SUPERSETS.get(codec, (codec,))[0] if codec is not None else "cp1252"
    try:
        return data.decode(fallback, "replace")
    except LookupError:  # pragma: no cover - codec_for returned a known codec
        return data.decode("cp1252", "replace")


def _mostly_ascii(data: bytes) -> bool:
    """True when at most a third of the bytes are 8-bit (Latin text; CJK, Cyrillic: more)."""
    high = len(data) - len(data.translate(None, bytes(range(128, 256))))
    return high * 3 <= len(data)


#: charset-normalizer reads at most this much of a buffer to guess its charset.
_GUESS_BYTES = 64 * 1024


def _guess(data: bytes) -> str | None:
    """charset-normalizer's reading of ``data``, or None when it has none."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    try:
        best = from_bytes(data[:_GUESS_BYTES]).best()
        if best is None or best.encoding is None:
            return None
        return data.decode(best.encoding, "replace")
    except Exception:  # a guesser must never stop the normalizer
        return None


def strip_surrogates(text: str, hints: Iterable[str] = ()) -> str:
    """Text with any undecoded bytes (surrogate escapes from the email parser) decoded.

    Strings from :mod:`email` parsed from bytes carry non-ASCII header bytes as
    lone surrogates; they cannot be stored or printed.
    """
    if text.isascii() or not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return decode_bytes(data, None, hints)


# --------------------------------------------------------------------------- RFC 2047

# An encoded-word (RFC 2047 section 2). Real mailers put spaces and '?' where the RFC
# forbids them; the encoded text is matched lazily up to the first '?='.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f]")
_C0_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,60})\?([QqBb])\?(.*?)\?=")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_WS = re.compile(r"[ \t]+")


def _decode_q(text: str) -> bytes:
    data = text.replace("_", " ").encode("utf-8", "surrogateescape")
    return _QP_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), data)


_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/]*={0,3}")


def _decode_b(text: str) -> bytes | None:
    clean = "".join(text.split())
    if not _BASE64_TEXT.fullmatch(clean):
        return None  # not base64 at all: the word stays as it was written
    clean = clean.rstrip("=")
    clean = clean[: len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean
    clean += "=" * (-len(clean) % 4)
    try:
        return binascii.a2b_base64(clean.encode("ascii"))
    except (binascii.Error, ValueError):
        return None


def decode_words(value: str, hints: Iterable[str] = ()) -> str:
    """Decode the RFC 2047 encoded-words in a header value; other text stays as it is.

    Whitespace between two encoded-words is dropped (:rfc:`2047#section-6.2`),
    and adjacent words in one charset are joined as bytes before decoding,
    because mailers split multi-byte characters across words (common in Korean
    and Japanese subjects). A word that cannot be decoded is kept literally.
    """
    if "=?" not in value:
        return value
    hints = tuple(hints)
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    last_end = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending:
            out.append(decode_bytes(b"".join(pending), pending_charset, hints))
            pending.clear()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[last_end : match.start()]
        charset, encoding, text = match.group(1), match.group(2).upper(), match.group(3)
        data = _decode_q(text) if encoding == "Q" else _decode_b(text)
        if data is None:
            continue  # left in the literal text below
        if pending and not between.strip():  # only blanks since the previous word: drop them
            if codec_for(charset) != codec_for(pending_charset):
                flush()
        else:
            flush()
            out.append(between)
        pending.append(data)
        pending_charset = charset
        last_end = match.end()
    flush()
    out.append(value[last_end:])
    return "".join(out)


def header_text(value: str, hints: Iterable[str] = (), *, words: bool = True) -> str:
    """A raw header value (as :meth:`email.message.Message.raw_items` gives it) as text.

    Unfolded, 8-bit bytes decoded (UTF-8, then the message's declared charsets),
    RFC 2047 words decoded when ``words``, runs of blanks collapsed, trimmed.
    """
    hints = tuple(hints)
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "")
    value = strip_surrogates(value, hints)
    if words:
        value = decode_words(value, hints)
    value = _CONTROLS.sub(" ", value)
    return _WS.sub(" ", value).strip()


# --------------------------------------------------------------------------- HTML

_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")


#: The defect recorded for markup nested deeper than the HTML parser reads (libxml2
#: stops at 256 levels and drops the rest silently; a hold on a word there would not hold).
HTML_TOO_DEEP = "HTMLTooDeep"
_XML_DECLARATION = re.compile(r"^<\?xml [^>]*>", re.I)


def html_to_text(html: str) -> str:
    """The readable text of an HTML part; scripts, styles and comments dropped.

    inscriptis renders block structure (paragraphs, lists, tables) as lines.
    Malformed markup is read as well as lxml can; an empty or unreadable
    document gives "".
    """
    return html_text(html)[0]


def html_text(html: str) -> tuple[str, str | None]:
    """:func:`html_to_text`, and the defect (:data:`HTML_TOO_DEEP`) when the parser could
    not read all of the markup: the text then comes from dropping the tags instead.
    """
    if not html.strip():
        return "", None
    # lxml refuses NUL and most C0 controls; mail sometimes has them.
    html = _XML_DECLARATION.sub("", _C0_CONTROLS.sub("", html).strip(), count=1)
    defect = None
    try:
        text = _rendered(html)
    except _TooDeep:
        text, defect = _without_tags(html), HTML_TOO_DEEP
    except Exception:  # lxml's ParserError and friends: fall back to dropping the tags
        text = _without_tags(html)
    return _BLANK_LINES.sub("\n\n", text).strip(), defect


class _TooDeep(Exception):
    pass


def _rendered(html: str) -> str:
    """inscriptis over a tree parsed here, so that the parser's resource errors are seen."""
    from inscriptis import Inscriptis  # type: ignore[import-untyped]
    from lxml.etree import ParserError  # type: ignore[import-untyped]
    from lxml.html import HTMLParser, document_fromstring  # type: ignore[import-untyped]

    parser = HTMLParser()
    try:
        tree = document_fromstring(html, parser=parser)
    except ParserError:  # no element at all: read it as preformatted text, as inscriptis does
        tree = document_fromstring("<pre>" + html + "</pre>", parser=parser)
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        raise _TooDeep
    try:
        return str(Inscriptis(tree).get_text())
    except RecursionError as exc:
        raise _TooDeep from exc


def _without_tags(html: str) -> str:
    return re.sub(r"(?is)<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", " ", html)


# --------------------------------------------------------------------------- file names

# Path separators, controls, characters Windows reserves, and bidi overrides (which make
# "\u202egnp.exe" look like "exe.png").
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"*/:<>?\\|\u200e\u200f\u202a-\u202e\u2066-\u2069]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_MAX_NAME_BYTES = 200


def safe_filename(name: str | None, fallback: str) -> str:
    """A name that can be created in any folder on Linux, macOS and Windows.

    Path separators, control and reserved characters become ``_``; leading
    dots and trailing dots or spaces go; Windows device names get a ``_``
    prefix; the name is cut to 200 UTF-8 bytes keeping its extension.
    ``fallback`` is used when nothing is left. It is a *name*: callers never
    treat it as a path.
    """
    text = unicodedata.normalize("NFC", name or "")
    text = _UNSAFE.sub("_", text)
    text = text.strip().lstrip(".").rstrip(". ")
    if _RESERVED.match(text):
        text = f"_{text}"
    if not text or set(text) <= {"_", " ", "."}:
        text = fallback
    if len(text.encode("utf-8")) > _MAX_NAME_BYTES:
        stem, dot, ext = text.rpartition(".")
        if not dot or len(ext) > 16:
            stem, ext = text, ""
        suffix = f".{ext}" if ext else ""
        room = _MAX_NAME_BYTES - len(suffix.encode("utf-8"))
        stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(". ")
        text = f"{stem}{suffix}"
    return text
