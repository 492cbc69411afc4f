"""syncer: pull mail over IMAP or POP3 into a normalized SQL archive.

The raw message is the truth (stored byte for byte, addressed by SHA-256);
everything else is derived from it. See README.md and docs/architecture.md.
"""

from __future__ import annotations

__version__ = "0.1.0"
