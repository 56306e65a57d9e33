"""reconciler/threads.py: a wave of reads left by an exception, Ctrl-C while it waits included,
does not wait for the reads still running; Ctrl-C is noticed whichever thread the kernel gave
it to; a wave that ends normally has every answer."""
from __future__ import annotations

import signal
import threading

import pytest

from reconciler.threads import read_pool


@pytest.fixture
def hung_read():
    """A read that does not answer until released (at the end of the test at the latest)."""
    release, started = threading.Event(), threading.Event()
    threads: list[int] = []

    def read():
        threads.append(threading.get_ident())
        started.set()
        release.wait(10)
        return "late"

    read.started, read.threads = started, threads  # type: ignore[attr-defined]
    yield read
    release.set()


def test_a_block_left_by_an_exception_leaves_running_reads_behind_and_cancels_the_rest(hung_read):
    with pytest.raises(KeyboardInterrupt):
        with read_pool(1) as pool:
            running = pool.submit(hung_read)
            queued = pool.submit(lambda: "never")
            assert hung_read.started.wait(10)
            raise KeyboardInterrupt
    assert running.running()  # not waited for
    assert queued.cancelled()


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="signals to one thread are POSIX-only")
def test_ctrl_c_that_the_kernel_gave_a_reader_thread_ends_the_wait(hung_read):
    """SIGINT delivered to a reader, not to the main thread: the main thread, waiting for the
    block's reads, still raises KeyboardInterrupt, and leaves the hung read and the queued one."""
    def interrupt_the_reader():
        hung_read.started.wait(10)
        signal.pthread_kill(hung_read.threads[0], signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        with read_pool(1) as pool:
            running = pool.submit(hung_read)
            queued = pool.submit(lambda: "never")
            threading.Thread(target=interrupt_the_reader, daemon=True).start()
    assert running.running() and queued.cancelled()


def test_a_block_that_ends_normally_waits_for_every_read():
    release = threading.Event()
    with read_pool(3) as pool:
        futures = [pool.submit(lambda n=n: release.wait(5) and n) for n in range(3)]
        release.set()
    assert all(future.done() for future in futures)
    assert [future.result() for future in futures] == [0, 1, 2]


def test_an_error_in_one_read_is_kept_for_its_future_and_the_others_still_answer():
    def broken():
        raise RuntimeError("no such bucket")

    with read_pool(2) as pool:
        failed, fine = pool.submit(broken), pool.submit(lambda: "ok")
    with pytest.raises(RuntimeError, match="no such bucket"):
        failed.result()
    assert fine.result() == "ok"
