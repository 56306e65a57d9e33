"""The threads a command starts to wait on AWS, made so that Ctrl-C ends the command at once.

Two things stood between Ctrl-C and the end of a plan whose reads hang on a silent endpoint:
- The kernel hands a process's SIGINT to any one of its threads that does not block it. Python
  runs the handler (KeyboardInterrupt) only in the main thread, and a main thread blocked in a
  join or a future's result() is woken only when the signal was delivered to it: about one
  Ctrl-C in ten went to a reader thread and changed nothing. These threads block SIGINT and
  SIGTERM, so the main thread gets them.
- A ThreadPoolExecutor used as a context manager waits, on the way out, for every call it still
  runs, exception or not: up to the ~55 s each read's timeouts and retries allow, after
  "Interrupted." was printed. This pool waits only when its block ends normally; left by an
  exception it cancels what has not started and leaves the running reads behind, and the
  console script ends without them (cli.entry).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def leave_signals_to_the_main_thread() -> None:
    if hasattr(signal, "pthread_sigmask"):  # POSIX; elsewhere signals reach only the main thread anyway
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)


@contextlib.contextmanager
def read_pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=max(1, workers), initializer=leave_signals_to_the_main_thread)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


class Timer(threading.Timer):
    """threading.Timer as a daemon that leaves signals to the main thread."""

    def __init__(self, interval: float, function: Callable[[], None]) -> None:
        super().__init__(interval, function)
        self.daemon = True

    def run(self) -> None:
        leave_signals_to_the_main_thread()
        super().run()
