"""The normalization stage's worker processes: plain subprocesses on pipes, one extractor.

Why this module exists instead of :class:`concurrent.futures.ProcessPoolExecutor`:
the default ``syncer sync`` bounds the resident memory of its whole process
tree (docs/performance.md, "Memory of the process tree"). The executor cost a
resource-tracker process (a whole interpreter, ~13 MB, started for its
semaphores), multiprocessing's imports in every worker, pickled copies of the
tasks in this process, and each worker ran an attachment-text child of its own
(~25 MB each). Here each worker is a plain ``python`` on two pipes
(:func:`syncer.sync.normalize_work.serve`): a task's raw messages are written
to its pipe as they are, and the workers hand the attachments a child must
read to this process, where one :class:`~syncer.mime.attachments.TextExtractor`
(its time limit, kill and restart unchanged) reads them for all, one at a time.

Each worker has a thread here that feeds it tasks from one queue and answers
its attachment requests. A worker that dies (killed for memory, a crash in a C
library) fails its task and every later one with :class:`WorkerDied`; the
stage then stops, and what it saved stays saved. Workers die with this
process (``PR_SET_PDEATHSIG``) and end when their input pipe closes.

Public API: :class:`Pool`, :class:`WorkerDied`.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import IO, TYPE_CHECKING

from syncer.sync.normalize_work import Done, read_expected, read_frame, send_frame

if TYPE_CHECKING:
    from syncer.mime.attachments import TextExtractor

#: How a worker is started (after the interpreter): it imports only normalize_work.
_WORKER = ("-c", "from syncer.sync.normalize_work import serve; serve()")
#: Seconds a worker may take to exit once its input pipe is closed.
_EXIT_SECONDS = 5.0


class WorkerDied(Exception):
    """A worker process ended while it had a task (or before it could take one)."""


def _exit_code(worker: subprocess.Popen[bytes]) -> int | None:
    """The exit code of a worker whose pipe just closed, or None while it still runs.

    Its pipe closes the moment it dies, a little before the kernel lets it be reaped,
    so it is waited for briefly: the error then says how it ended (``-9``: killed).
    """
    try:
        return worker.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        return None


#: A queued task: its future and what reads its raw messages.
_Item = tuple["Future[list[Done]]", Callable[[], list[bytes]]]


class Pool:
    """``processes`` worker processes normalizing tasks of raw messages.

    :param extractor: gives the one extractor that reads the workers'
        attachments (called on first need; the pool does not close it).
    """

    def __init__(
        self,
        processes: int,
        *,
        verify_dkim: bool,
        dialect: str,
        extractor: Callable[[], TextExtractor],
    ) -> None:
        self._extractor = extractor
        self._extract_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._workers: list[subprocess.Popen[bytes]] = []
        self._threads: list[threading.Thread] = []
        # Threads leave together: the extractor child dies with the thread that started it.
        self._leaving = threading.Barrier(processes)
        try:
            for number in range(processes):
                worker = subprocess.Popen(
                    [sys.executable, *_WORKER, str(os.getpid())],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                self._workers.append(worker)
                assert worker.stdin is not None
                send_frame(worker.stdin, b"O", pickle.dumps((verify_dkim, dialect)))
                thread = threading.Thread(
                    target=self._feed, args=(worker,), name=f"normalize-pool-{number}", daemon=True
                )
                self._threads.append(thread)
        except OSError:
            self._stop_workers()
            raise
        for thread in self._threads:
            thread.start()

    def submit(self, load: Callable[[], list[bytes]]) -> Future[list[Done]]:
        """Queue a task; its future gives one :data:`Done` per raw message, in order.

        :param load: reads the task's raw messages; called in one of the pool's
            threads when a worker is free, so the bytes are held here only
            while they are sent. What it raises is the future's exception.
        """
        future: Future[list[Done]] = Future()
        self._queue.put((future, load))
        return future

    def shutdown(self) -> None:
        """Cancel what is queued, let the running tasks finish, stop the workers."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._stop_workers()

    # ------------------------------------------------------------------ in the threads

    def _feed(self, worker: subprocess.Popen[bytes]) -> None:
        died: WorkerDied | None = None
        while (item := self._queue.get()) is not None:
            future, load = item
            del item
            if not future.set_running_or_notify_cancel():
                continue
            if died is None:
                try:
                    raws = load()
                except Exception as exc:  # the archive could not be read: the stage's error
                    future.set_exception(exc)
                    continue
                try:
                    future.set_result(self._run(worker, raws))
                    continue
                except (OSError, EOFError, pickle.UnpicklingError) as exc:
                    code = _exit_code(worker)
                    died = WorkerDied(
                        f"worker process {worker.pid} "
                        + (f"exited with {code}" if code is not None else f"failed: {exc}")
                    )
            future.set_exception(died)  # and every later task this thread takes
        self._leaving.wait()

    def _run(self, worker: subprocess.Popen[bytes], raws: list[bytes]) -> list[Done]:
        """The task's results, one message at a time; each raw message is dropped once sent."""
        inbox, outbox = worker.stdout, worker.stdin
        assert inbox is not None and outbox is not None
        results: list[Done] = []
        for index, raw in enumerate(raws):
            raws[index] = b""
            send_frame(outbox, b"M", raw)
            del raw
            while (frame := read_frame(inbox))[0] == b"X":
                self._answer(inbox, outbox, frame[1])
            kind, payload = frame
            if kind != b"R":
                raise EOFError(f"unexpected frame {kind!r}")
            results.append(pickle.loads(payload))
        return results

    def _answer(self, inbox: IO[bytes], outbox: IO[bytes], request: bytes) -> None:
        part_path, content_type, filename, charset, timeout = pickle.loads(request)
        data = read_expected(inbox, b"M")
        with self._extract_lock:
            found = self._extractor().extract(
                part_path, content_type, filename, charset, data, timeout=timeout
            )
        del data
        send_frame(outbox, b"A", pickle.dumps(found, pickle.HIGHEST_PROTOCOL))

    def _stop_workers(self) -> None:
        for worker in self._workers:
            try:
                if worker.stdin is not None:
                    worker.stdin.close()
            except OSError:
                pass
        for worker in self._workers:
            try:
                worker.wait(timeout=_EXIT_SECONDS)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            if worker.stdout is not None:
                worker.stdout.close()
        self._workers.clear()
