"""What every command shares: the lazily loaded configuration and store, and JSON output.

Why a module of its own: each command group lives in its own module (loaded only when
named, see :mod:`syncer.cli.app`); they all need the same state object and output
helper, and importing them from the group's module would tie every command to it.
"""

from __future__ import annotations

import json as jsonlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_base import StoreCore
    from syncer.config.schema import Config
    from syncer.progress import ProgressReporter

#: A class of the archive store (:class:`ArchiveStore` or one of some of its mixins).
S = TypeVar("S", bound="StoreCore")


@dataclass
class State:
    """The global options, and the configuration once a command asks."""

    config_path: str | None
    verbose: int
    quiet: bool = False
    log_file: str | None = None
    #: stderr's log level when neither ``[logging] level`` nor ``-v`` says (the daemon: info).
    default_level: str = "warning"
    _config: Config | None = None
    #: The sections of ``_config`` that were read (:func:`~syncer.config.schema.load_config`);
    #: None: all of them.
    _read: frozenset[str] | None = None

    def configure_logs(self) -> None:
        """(Re)configure logging from the options and, once loaded, the configuration."""
        from syncer import logs

        settings = self._config.logging if self._config is not None else None
        fmt = settings.format if settings else "auto"
        logs.configure(
            self.verbose,
            json=None if fmt == "auto" else fmt == "json",
            level=settings.level if settings else None,
            quiet=self.quiet,
            log_file=self.log_file,
            default_level=self.default_level,
        )

    @property
    def config(self) -> Config:
        """The whole configuration, every section validated (the daemon, `config check`,
        the commands that read many sections)."""
        return self._load(None)

    def read_config(self, *sections: str) -> Config:
        """The configuration with only ``sections`` (and the archive and logging ones)
        read and validated: what a command uses, and nothing else
        (:func:`syncer.config.schema.load_config`). Reading more later reads the file again.
        """
        return self._load(frozenset(sections))

    def _load(self, sections: frozenset[str] | None) -> Config:
        if self._config is not None and (
            self._read is None or (sections is not None and sections <= self._read)
        ):
            return self._config
        from syncer.config.schema import BASE_SECTIONS, load_config

        if sections is not None:
            sections |= BASE_SECTIONS | (self._read or frozenset())
        self._config = load_config(self.config_path, sections=sections)
        self._read = sections
        self.configure_logs()
        return self._config

    def note(self, text: str, event: str, **fields: Any) -> None:
        """Something said once (the archive was created): a line on a terminal, else a log
        event (stderr stays JSON lines for log shippers; under ``-q`` only ``--log-file``
        gets it).

        The event is a warning so it shows at the default level: it happens once per archive.
        """
        if sys.stderr.isatty() and not self.quiet:
            click.echo(text, err=True)
            return
        import structlog

        structlog.get_logger(__name__).warning(event, **fields)

    def progress(
        self, label: str, *, json_output: bool = False, unit: str = "messages"
    ) -> ProgressReporter:
        """The progress display for a long command (see :mod:`syncer.progress`)."""
        from syncer.progress import DEFAULT_INTERVAL, ProgressReporter, choose_mode

        interval = self._config.logging.progress_every if self._config else DEFAULT_INTERVAL
        return ProgressReporter(
            label,
            mode=choose_mode(json_output=json_output, quiet=self.quiet),
            interval=interval,
            unit=unit,
        )

    def open_store(self, *, create: bool = False, first_use: bool = False) -> ArchiveStore:
        """The archive, at the schema this syncer needs.

        :param create: create it or bring its schema up to date (``syncer init``).
        :param first_use: a command that fills the archive (sync, run, import): a missing
            SQLite file is created at the current schema, and said so once. Without it a
            missing SQLite archive is refused and no file is left behind.
        :raises ArchiveError: no SQLite archive yet (and not ``first_use``).
        """
        from syncer.archive.store import ArchiveStore

        return self.open_as(ArchiveStore, create=create, first_use=first_use)

    def open_as(self, kind: type[S], *, create: bool = False, first_use: bool = False) -> S:
        """The archive opened as ``kind``: :meth:`open_store` for a command that calls the
        methods of only some of the store's mixins (``search``, ``show``: see
        :mod:`syncer.archive.reader`), so that it does not import the others."""
        from syncer.archive.engine import sqlite_file

        cfg = self.read_config()
        path = sqlite_file(cfg.archive_url)
        if path is not None and not path.exists():
            if not first_use and not create:
                from syncer.errors import ArchiveError

                raise ArchiveError(
                    f"no archive yet: run `syncer sync` (looked for {path}).",
                    hint="`syncer sync --dry-run` shows first what it would archive.",
                )
            create = True
            self.note(
                f"Creating the archive at {path} (first use).", "archive.created", path=str(path)
            )
        if create:
            from syncer.archive.engine import make_engine, upgrade

            engine = make_engine(cfg.archive_url)
            try:
                upgrade(engine)
            finally:
                engine.dispose()
        return kind.open(cfg.archive_url, blob_store=cfg.blob_store)


pass_state = click.make_pass_decorator(State)


def emit_json(data: Any) -> None:
    """Data on stdout as indented, key-sorted JSON (``--json``)."""
    click.echo(jsonlib.dumps(data, indent=2, sort_keys=True, default=str))


def complete_accounts(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Shell completion of account names, from the configuration the command line names
    (``--config``) or finds; nothing when there is none or it does not load."""
    from click.shell_completion import CompletionItem

    from syncer.config.schema import load_config
    from syncer.errors import SyncerError

    root = ctx.find_root()
    try:
        config = load_config(root.params.get("config_path"), sections=("accounts",))
    except SyncerError:
        return []
    return [
        CompletionItem(a.name, help=f"{a.protocol} {a.username}@{a.host}")
        for a in config.accounts
        if a.name.startswith(incomplete)
    ]
