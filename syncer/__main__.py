"""`python -m syncer` is the same as the `syncer` console script."""

from __future__ import annotations

from syncer.cli.app import main

main()
