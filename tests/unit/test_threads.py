"""reconciler/threads.py: the reader threads leave Ctrl-C to the main thread, and a wave of
reads left by an exception does not wait for the reads still running."""
from __future__ import annotations

import signal
import threading

import pytest

from reconciler.threads import Timer, read_pool

SIGNALS = {signal.SIGINT, signal.SIGTERM}


def blocked() -> set[int]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_pool_threads_block_the_signals_and_the_main_thread_does_not():
    with read_pool(2) as pool:
        masks = [pool.submit(blocked) for _ in range(2)]
    assert all(SIGNALS <= mask.result() for mask in masks)
    assert not SIGNALS & blocked()


def test_a_timer_blocks_the_signals_and_is_a_daemon():
    seen: list[set[int]] = []
    fired = threading.Event()
    timer = Timer(0.01, lambda: (seen.append(blocked()), fired.set()))
    assert timer.daemon
    timer.start()
    assert fired.wait(10)
    assert SIGNALS <= seen[0]


def test_a_block_left_by_an_exception_leaves_running_reads_behind_and_cancels_the_rest():
    release = threading.Event()
    started = threading.Event()

    def hung_read():
        started.set()
        release.wait(30)
        return "late"

    try:
        with pytest.raises(KeyboardInterrupt):
            with read_pool(1) as pool:
                running = pool.submit(hung_read)
                queued = pool.submit(lambda: "never")
                assert started.wait(10)
                raise KeyboardInterrupt
        assert running.running() and not running.done()  # not waited for
        assert queued.cancelled()
    finally:
        release.set()
    assert running.result(timeout=10) == "late"


def test_a_block_that_ends_normally_waits_for_every_read():
    release = threading.Event()
    with read_pool(3) as pool:
        futures = [pool.submit(lambda n=n: release.wait(5) and n) for n in range(3)]
        release.set()
    assert all(future.done() for future in futures)
    assert [future.result() for future in futures] == [0, 1, 2]
