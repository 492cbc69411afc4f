"""Where each archived folder goes on the target of ``syncer push``: a pure mapping.

Why this module exists: two IMAP servers rarely agree on folder names. One
puts everything below ``INBOX.`` with ``.`` between levels, the other at the
top with ``/``; one calls the sent folder ``Sent Items``, the other ``Sent``.
The mapping works on readable names split into levels and decides, in this
order:

1. ``INBOX`` is ``INBOX``.
2. ``--map OLD=NEW`` (levels separated by ``/`` on both sides): the longest
   OLD that is the folder or one of its parents is replaced by NEW.
3. Special-use roles (:rfc:`6154`): a source folder with a role (``\\Sent``,
   ``\\Trash``, ``\\Drafts``, ``\\Junk``, ``\\Archive``...) -- and everything
   below it -- goes to the target folder with the same role, whatever either is
   called.
4. Otherwise the same levels. The source's namespace prefix (``INBOX.`` on
   Courier-style servers, recognised when every folder starts with it) is taken
   off and the target's put on; levels are joined with the target's delimiter,
   and a delimiter character inside a level becomes ``_`` (it would otherwise
   make a new level).

The source's levels come from the archive's shown names (``/`` between levels,
personal prefix already off: :mod:`syncer.sources.folder_names`, which also
encodes them for the target), so push and sync name folders the same way.

Public API: :class:`SourceFolder`, :class:`TargetLayout`, :func:`parse_maps`,
:func:`source_prefix`, :func:`map_folders`, :func:`readable`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from syncer.errors import UsageError
from syncer.sources.folder_names import FolderNaming, decode_level, shown_levels

__all__ = [
    "SourceFolder",
    "TargetLayout",
    "map_folders",
    "parse_maps",
    "readable",
    "source_prefix",
]


@dataclass(frozen=True, slots=True)
class SourceFolder:
    """An archived folder: wire name, readable name, delimiter and special-use role."""

    name: str
    display_name: str
    delimiter: str | None
    special_use: str | None = None


@dataclass(frozen=True, slots=True)
class TargetLayout:
    """What the target server lists: personal prefix, delimiter, folders with roles.

    :ivar roles: special-use attribute (lower-cased) -> wire name of the folder with it.
    """

    prefix: str = ""
    delimiter: str = "/"
    roles: dict[str, str] = field(default_factory=dict)


def readable(wire: str) -> str:
    """A target wire name as people read it (modified UTF-7 decoded)."""
    return decode_level(wire)


def parse_maps(values: Iterable[str]) -> dict[tuple[str, ...], tuple[str, ...]]:
    """``["Old/Name=New/Name", ...]`` as level tuples.

    :raises UsageError: for a value without ``=`` or with an empty side.
    """
    maps: dict[tuple[str, ...], tuple[str, ...]] = {}
    for value in values:
        old, sep, new = value.partition("=")
        old_parts = tuple(p for p in old.split("/") if p)
        new_parts = tuple(p for p in new.split("/") if p)
        if not sep or not old_parts or not new_parts:
            raise UsageError(
                f"--map {value!r} is not OLD=NEW.",
                hint="Write folder names with / between levels, e.g. --map 'Sent Items=Sent'.",
            )
        maps[old_parts] = new_parts
    return maps


def source_prefix(folders: Sequence[SourceFolder]) -> str:
    """The source's personal namespace prefix, as far as folder names show it.

    ``INBOX.`` (or ``INBOX/``) when every folder other than INBOX starts with it
    (Courier, Cyrus); otherwise none.
    """
    others = [f for f in folders if f.name.upper() != "INBOX"]
    if not others:
        return ""
    delimiters = {f.delimiter for f in others}
    if len(delimiters) != 1:
        return ""
    (delimiter,) = delimiters
    if not delimiter:
        return ""
    prefix = "INBOX" + delimiter
    return prefix if all(f.name.startswith(prefix) for f in others) else ""


def _levels(folder: SourceFolder, prefix: str) -> tuple[str, ...]:
    name = folder.display_name or folder.name
    if prefix and name.startswith(prefix) and folder.delimiter:
        # An archive not synced since shown names lost the prefix: the old decoded wire name.
        return tuple(name[len(prefix) :].split(folder.delimiter))
    return shown_levels(name)


def _replace_prefix(
    levels: tuple[str, ...], table: dict[tuple[str, ...], tuple[str, ...]]
) -> tuple[str, ...] | None:
    for size in range(len(levels), 0, -1):
        new = table.get(levels[:size])
        if new is not None:
            return new + levels[size:]
    return None


def _encode(levels: tuple[str, ...], layout: TargetLayout) -> str:
    return FolderNaming(layout.prefix, layout.delimiter).wire_of_levels(levels)


def map_folders(
    folders: Sequence[SourceFolder],
    layout: TargetLayout,
    maps: dict[tuple[str, ...], tuple[str, ...]] | None = None,
) -> dict[str, str]:
    """Source wire name -> target wire name, for each of ``folders`` (see the module docstring)."""
    prefix = source_prefix(folders)
    maps = maps or {}
    by_role: dict[tuple[str, ...], tuple[str, ...]] = {}
    target_levels: dict[str, tuple[str, ...]] = {}
    for role, target_name in layout.roles.items():
        name = target_name
        if layout.prefix and name.startswith(layout.prefix):
            name = name[len(layout.prefix) :]
        target_levels[role] = tuple(
            decode_level(level)
            for level in (name.split(layout.delimiter) if layout.delimiter else [name])
        )
    for folder in folders:
        role = (folder.special_use or "").lower()
        if role and role in target_levels and folder.name.upper() != "INBOX":
            by_role[_levels(folder, prefix)] = target_levels[role]
    result: dict[str, str] = {}
    for folder in folders:
        if folder.name.upper() == "INBOX" and () not in maps and ("INBOX",) not in maps:
            result[folder.name] = "INBOX"
            continue
        levels = _levels(folder, prefix)
        mapped = _replace_prefix(levels, maps)
        if mapped is None:
            mapped = _replace_prefix(levels, by_role) or levels
        result[folder.name] = _encode(mapped, layout)
    return result
