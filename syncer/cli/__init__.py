"""The ``syncer`` command line (:mod:`syncer.cli.app`), one module per command group.

Start-up: while a ``syncer`` process imports its libraries (click, structlog,
SQLAlchemy, pydantic ...), the cyclic garbage collector runs dozens of times,
each pass walking the objects those imports just made, none of them garbage:
about a tenth of a no-change ``syncer sync``. So the ``syncer`` program (the
console script or ``python -m syncer``, not a process that merely imports this
package) starts with the collector paused, and a timer turns it back on after
:data:`START_UP_SECONDS`: a short command finishes before, a long one collects
as usual from then on (what it made meanwhile is collected then).
"""

from __future__ import annotations

import gc
import os
import sys
import threading

#: Seconds the collector stays paused at the start of a ``syncer`` process.
START_UP_SECONDS = 1.0


def _is_the_program() -> bool:
    """Whether this process is the ``syncer`` program (not tests or a library user)."""
    argv0 = sys.argv[0] if sys.argv else ""
    return os.path.basename(argv0) == "syncer" or argv0.endswith(
        os.path.join("syncer", "__main__.py")
    )


def _pause_collector_while_starting() -> None:
    if not _is_the_program() or not gc.isenabled():
        return
    gc.disable()
    timer = threading.Timer(START_UP_SECONDS, gc.enable)
    timer.daemon = True
    timer.name = "gc-after-start-up"
    timer.start()


_pause_collector_while_starting()
