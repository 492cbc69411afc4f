"""The web archive (``syncer serve``): search, read, holds, audit and export in a browser.

Why a package of its own: it is a feature above retention, relay and transfer and
below the daemon (``syncer run`` can serve it) and the CLI. It reads the archive
only through :class:`~syncer.archive.store.ArchiveStore`'s typed methods and the
query language, never SQL of its own (an import-linter contract says so).

Modules: ``auth`` (argon2id passwords, API tokens, sign-in with lockout),
``access`` (what a user may see: the query scope of a reader), ``security``
(headers, CSP, CSRF), ``mailview`` (the sanitized HTML body, attachments,
zips), ``exports`` (streamed mbox and zip), ``pages`` and ``api`` (the routes),
``app`` (the Starlette application), ``server`` (uvicorn).
"""

from __future__ import annotations
