"""Child processes that die with their parent.

Why: normalization spreads its work over a process pool, and each pool process
starts an attachment-text child. When the parent is killed with SIGKILL (the
OOM killer, ``kill -9``, a container stop), nothing runs in it to stop them:
they were reparented to init and waited on a pipe forever, holding memory.
On Linux each child asks the kernel (``prctl(PR_SET_PDEATHSIG)``) for SIGKILL
when its parent goes; elsewhere a thread watches the parent's pid.

Public API: :func:`die_with_parent`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

#: prctl(2) option: the signal sent to this process when its parent thread exits.
_PR_SET_PDEATHSIG = 1
#: How often the fallback watchdog looks for its parent (seconds).
_WATCH_INTERVAL = 1.0


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when the process ``parent_pid`` ends.

    Called first thing in a child. ``parent_pid`` is the parent's pid as the
    parent saw it before starting the child: if the parent already died in
    between, the child is now someone else's and exits at once.

    The Linux signal fires when the *thread* that started the child exits; the
    callers start their children from a thread that outlives them (the pool's
    caller, the pool process's main thread).
    """
    if sys.platform.startswith("linux") and _prctl_deathsig():
        if os.getppid() != parent_pid:
            os._exit(1)
        return
    _watch(parent_pid)


def _prctl_deathsig() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int) -> None:
    """The portable fallback: a daemon thread that exits the process once orphaned."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_WATCH_INTERVAL)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
