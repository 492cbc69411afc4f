"""Creating files that hold mail: private whatever the umask, never through a symlink.

Why: the archive, its backups and exports hold everyone's mail, so they are
created 0600 (directories 0700) however the umask is set; and a target folder
someone else can write to may have symlinks planted in it, which an export
that opens ``tmp/x`` or ``.syncer-export.json.tmp`` by name would follow and
overwrite files outside the folder. Every file here is created with
``O_CREAT | O_EXCL | O_NOFOLLOW`` (a planted name makes it fail, it is never
opened) and renamed into place (``rename`` replaces a link, never follows it).

Public API: :func:`create_private`, :func:`write_private`, :func:`private_dir`,
:func:`refuse_symlinks`, :class:`SymlinkRefused`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from syncer.errors import UsageError

#: Flags for a new private file: fails on any existing name, a symlink included.
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC


class SymlinkRefused(UsageError):
    """A symlink was found where syncer reads or writes mail (exit 2)."""


def create_private(path: Path) -> int:
    """Create ``path`` (mode 0600, never existing before, never a link) and open it for writing.

    :raises FileExistsError: when the name exists, a symlink included.
    """
    return os.open(path, _NEW, 0o600)


def write_private(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` to ``path`` through a fresh private temporary file renamed into place.

    :raises SymlinkRefused: when ``path`` is a symlink.
    """
    if path.is_symlink():
        raise SymlinkRefused(f"{path} is a symbolic link; syncer does not write through links.")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = create_private(tmp)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if sync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents as 0700 directories; an existing one is kept.

    :raises SymlinkRefused: when ``path`` is a symlink.
    """
    if path.is_symlink():
        raise SymlinkRefused(f"{path} is a symbolic link; syncer does not write through links.")
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for made in missing:
        os.chmod(made, 0o700)  # mkdir's mode is cut by the umask; chmod is not


def refuse_symlinks(root: Path) -> None:
    """Raise when ``root`` or anything under it is a symbolic link.

    :raises SymlinkRefused: naming the first link found.
    """
    if root.is_symlink():
        raise SymlinkRefused(f"{root} is a symbolic link; syncer does not follow links.")
    if not root.is_dir():
        return
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in (*dirs, *files):
            found = Path(current, name)
            if found.is_symlink():
                raise SymlinkRefused(
                    f"{found} is a symbolic link; syncer does not follow links under {root}.",
                    hint="Remove the link, or point syncer at a folder without links.",
                )
