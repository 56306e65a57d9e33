"""Clients.read_once: one call per key inside a plan's read wave, even from racing threads."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from reconciler.aws import Clients


def test_racing_readers_share_one_call_and_its_error_and_nothing_outlives_the_wave():
    clients = Clients(region="eu-west-1")
    calls, gate = [], threading.Event()

    def read():
        calls.append(1)
        gate.wait(5)
        return {"Policy": "{}"}

    with clients.shared_reads():
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(clients.read_once, ("policy", "f"), read) for _ in range(4)]
            gate.set()
        assert [f.result() for f in futures] == [{"Policy": "{}"}] * 4
        assert len(calls) == 1

        def broken():
            calls.append(1)
            raise RuntimeError("throttled")

        for _ in range(2):
            with pytest.raises(RuntimeError, match="throttled"):
                clients.read_once(("policy", "g"), broken)
        assert len(calls) == 2
    clients.read_once(("policy", "f"), read)
    assert len(calls) == 3  # after the wave, a read is a read
