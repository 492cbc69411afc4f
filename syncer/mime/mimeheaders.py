"""Content-Type and Content-Disposition header objects without a parse per distinct value.

Why this module exists: the normalizer reads headers through the stdlib's modern
policy, which parses each header value with its RFC 5322 parser (a few hundred
Python calls, and a new class per header) into a header object. Most values
recur and are cached (:mod:`syncer.mime.normalize`), but the Content-Type of
every multipart carries the message's own boundary, and attachments their own
file names, so those were parsed anew: about a tenth of a worker's time on the
benchmark corpus. Such values differ only inside one quoted string, and the
parser treats every quoted string made of the characters :data:`_SIMPLE` allows
(letters, digits, ``'()+_,./:=-``, single blanks between them: no quote,
backslash, ``?``, tab or leading, trailing or double blank, so no quoted pair,
encoded word or folding white space the parser would collapse) alike, as
pieces of quoted text without defects. So the value is parsed once with a placeholder in
that string (a template, cached), and the header object of each value is the
template's with the placeholder replaced: its text, its parameters, its type
and disposition, its defects. Its parse tree (used only to refold the header
when a message is written out) is parsed from the value itself when asked for.

:func:`template_header` answers None where this does not apply (the stdlib
then parses); ``tests/unit/test_mime_headers.py`` compares the objects with the
stdlib's on the golden corpus and on generated values.

Public API: :func:`template_header`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

__all__ = ["template_header"]

#: The headers this applies to (lower case).
_NAMES = frozenset({"content-type", "content-disposition"})
#: A value whose one quoted string, at its end, is a parameter's (not an RFC 2231 ``name*``).
_QTEXT = r"[A-Za-z0-9'()+_,./:=-]+"
_SIMPLE = re.compile(rf'(?P<head>[^"\\]*[A-Za-z0-9-]=)"(?P<quoted>{_QTEXT}(?: {_QTEXT})*)"')
#: Stands for the quoted text in a template (letters only: a quoted string like the others).
_PLACEHOLDER = "SyncerQuotedTextPlaceholder"


def template_header(name: str, value: str, parse: Callable[[str, str], Any]) -> Any | None:
    """The header object ``parse(name, value)`` would give, made from a template; or None.

    :param value: the header value with its line breaks removed (as the policy
        hands it to its header factory).
    :param parse: the policy's header factory (the stdlib's parse).
    """
    if name.lower() not in _NAMES:
        return None
    match = _SIMPLE.fullmatch(value)
    if match is None:
        return None
    template = _template(name, f'{match["head"]}"{_PLACEHOLDER}"', parse)
    if template is None:
        return None
    return template(value, match["quoted"])


class _LazyTree:
    """Gives a template-made header object the parse tree of its own value, when asked."""

    _source: str
    value_parser: Callable[[str], Any]

    @property
    def _parse_tree(self) -> Any:
        return type(self).value_parser(self._source)


@functools.lru_cache(maxsize=64)
def _template(
    name: str, value: str, parse: Callable[[str, str], Any]
) -> Callable[[str, str], Any] | None:
    """A maker of header objects for values like ``value`` (its placeholder replaced)."""
    header = parse(name, value)
    text = str(header)
    state = dict(vars(header))
    params: dict[str, str] = state.get("_params", {})
    holders = [key for key, param in params.items() if _PLACEHOLDER in param]
    fixed = [state.get(key) for key in ("_maintype", "_subtype", "_content_disposition")]
    if (
        text.count(_PLACEHOLDER) != 1
        or len(holders) != 1
        or params[holders[0]] != _PLACEHOLDER
        or any(isinstance(item, str) and _PLACEHOLDER in item for item in fixed)
        or any(_PLACEHOLDER in str(defect) for defect in state["_defects"])
        or _PLACEHOLDER in name
    ):
        return None
    holder = holders[0]
    del state["_parse_tree"]
    lazy = type(type(header).__name__, (_LazyTree, *type(header).__bases__), {})
    before, after = text.split(_PLACEHOLDER)

    def make(source: str, quoted: str) -> Any:
        made: Any = str.__new__(lazy, before + quoted + after)
        made.__dict__.update(state)
        made._params = {**params, holder: quoted}
        made._defects = list(state["_defects"])
        made._source = source
        return made

    return make
