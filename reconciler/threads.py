"""The thread pool every wave of AWS reads runs in, made so that Ctrl-C ends the command at once.

Two things stood between Ctrl-C and the end of a plan whose reads hang on a silent endpoint:
- A ThreadPoolExecutor used as a context manager waits, on the way out, for every call it still
  runs, exception or not: up to the ~55 s each read's timeouts and retries allow, after
  "Interrupted." was printed. This pool, left by an exception (Ctrl-C while it waits included),
  cancels what has not started and leaves the running reads behind; the console script then
  ends without them (cli.entry).
- The kernel hands a process's SIGINT to any one of its threads. Python runs the handler
  (KeyboardInterrupt) only in the main thread, and a main thread blocked in a join or a future's
  result() without a timeout wakes only when the signal landed on it: through the fork server,
  one Ctrl-C in ten went to a reader thread and changed nothing. So the main thread never
  blocks without a timeout here: it waits for the reads in short slices, and a handler pending
  from whichever thread took the signal runs within one slice. (Blocking the signals in the
  reader threads instead would pass the mask on to what they start, a credential_process
  helper among them, and Windows has no such mask.)
"""
from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterator

SLICE = 0.2  # seconds: how late a Ctrl-C may be noticed while the reads are out


class _Pool(ThreadPoolExecutor):
    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=max(1, workers))
        self.futures: list[Future] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future = super().submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future


@contextlib.contextmanager
def read_pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A pool whose block ends when every call submitted in it has ended; take the answers
    from the futures afterwards (future.result() inside the block would wait without slices)."""
    pool = _Pool(workers)
    try:
        yield pool
        pending = set(pool.futures)
        while pending:
            pending = wait(pending, timeout=SLICE).not_done
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)  # every call has ended: the threads only have to notice
