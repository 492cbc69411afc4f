"""Manual pages, written from the click commands themselves: ``make man``
(``python -m syncer.cli.manpages DIR``).

Why generated: the help of each command is the documentation people read with
``-h``; a hand-written page would drift from it. One page per command and
subcommand (``syncer.1``, ``syncer-sync.1``, ``syncer-config-init.1`` ...), in
roff for ``man -l`` or a ``MANPATH`` entry.

Public API: :func:`write_manpages`.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click

from syncer import __version__


def _escape(text: str) -> str:
    """roff: a backslash starts an escape, a leading dot or quote a request."""
    lines = []
    for line in text.replace("\\", "\\e").splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _commands(
    command: click.Command, ctx: click.Context, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _commands(
                    sub, click.Context(sub, info_name=name, parent=ctx), (*path, name)
                )


def _page(path: tuple[str, ...], command: click.Command, ctx: click.Context, date: str) -> str:
    title = "-".join(path)
    out = [
        f'.TH "{title.upper()}" "1" "{date}" "syncer {__version__}" "syncer manual"',
        ".SH NAME",
        f"{title} \\- {_escape(command.get_short_help_str(limit=80))}",
        ".SH SYNOPSIS",
        f".B {' '.join(path)}",
        _escape(" ".join(command.collect_usage_pieces(ctx))),
    ]
    if command.help:
        # Paragraphs as filled text; a click "\b" block (the examples) kept as written.
        out.append(".SH DESCRIPTION")
        for paragraph in inspect.cleandoc(command.help).split("\n\n"):
            if paragraph.startswith("\b\n"):
                out += [".PP", ".nf", _escape(paragraph[2:]), ".fi"]
            else:
                out += [".PP", _escape(paragraph)]
    options = [
        p.get_help_record(ctx) for p in command.get_params(ctx) if isinstance(p, click.Option)
    ]
    records = [r for r in options if r is not None]
    if records:
        out.append(".SH OPTIONS")
        for names, text in records:
            out += [".TP", f"\\fB{_escape(names)}\\fR", _escape(text)]
    if isinstance(command, click.Group):
        subs = [f"{title}-{name}" for name in command.list_commands(ctx)]
        out += [".SH SEE ALSO", ", ".join(f"\\fB{s}\\fR(1)" for s in subs)]
    return "\n".join(line for line in out if line is not None) + "\n"


def write_manpages(directory: Path, group: click.Command | None = None) -> list[Path]:
    """Write one page per command into ``directory``; returns the files written."""
    from syncer.cli.app import main

    root = group or main
    directory.mkdir(parents=True, exist_ok=True)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    written = []
    for path, command, ctx in _commands(root, click.Context(root, info_name="syncer"), ("syncer",)):
        target = directory / f"{'-'.join(path)}.1"
        target.write_text(_page(path, command, ctx, date), encoding="utf-8")
        written.append(target)
    return written


if __name__ == "__main__":  # pragma: no cover - `make man`
    pages = write_manpages(Path(sys.argv[1] if len(sys.argv) > 1 else "man"))
    print(f"{len(pages)} manual pages in {pages[0].parent}")
