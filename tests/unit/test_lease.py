"""The daemon lease on a real SQLite state file: compare-and-set across processes, expiry, takeover, release."""

from __future__ import annotations

import dataclasses
import multiprocessing
import subprocess
import sys
import time

import pytest

from tracker_bridge.lease import Lease, LeaseHeld
from tracker_bridge.store import Store


@pytest.fixture
def url(state_url: str) -> str:
    """A fresh state store on each backend the lease must be safe on (SQLite, then a real PostgreSQL server)."""
    return state_url


def test_a_second_holder_is_refused_naming_host_pid_and_expiry(url: str) -> None:
    store = Store(url)
    first, second = Lease(store, 30), Lease(store, 30)
    first.acquire()
    with pytest.raises(LeaseHeld) as info:
        second.acquire()
    message = str(info.value)
    assert f"on {first.me.host} (pid {first.me.pid}) until" in message and "--standby" in message
    assert first.try_acquire() is None  # the holder may take it again (a renewal)
    store.close()


def test_an_expired_lease_is_taken_over_and_the_old_holder_learns_it_lost(url: str) -> None:
    store = Store(url)
    first, second = Lease(store, 0.3), Lease(store, 0.3)
    first.acquire()
    assert second.try_acquire() is not None
    time.sleep(0.4)  # first stopped renewing (it died)
    assert second.try_acquire() is None
    assert first.renew() is False  # it may not go on as if it still held the store
    assert second.renew() is True
    holder = second.holder()
    assert holder is not None and holder.holder == second.me.holder
    store.close()


def test_release_hands_over_at_once_and_standby_waits_for_it(url: str) -> None:
    store = Store(url)
    first, second = Lease(store, 60), Lease(store, 60)
    first.acquire()
    first.release()
    started = time.monotonic()
    second.acquire(standby=True)
    assert time.monotonic() - started < 1
    holder = second.holder()
    assert holder is not None and holder.holder == second.me.holder
    store.close()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_dead_holder_on_this_machine_is_taken_over_at_once_elsewhere_only_after_expiry(url: str) -> None:
    store = Store(url)
    crashed = Lease(store, 60)
    crashed.me = dataclasses.replace(crashed.me, pid=_dead_pid())  # a daemon that was SIGKILLed
    crashed.acquire()
    assert Lease(store, 60).try_acquire() is None  # systemd's restart does not wait out the lease

    remote = Lease(store, 0.5, name="other")
    remote.me = dataclasses.replace(remote.me, pid=_dead_pid())
    remote.machine = "another-machine"  # its pid means nothing here: only the expiry tells
    remote.acquire()
    standby = Lease(store, 0.5, name="other")
    assert standby.try_acquire() is not None
    time.sleep(0.6)
    assert standby.try_acquire() is None
    store.close()


def _race(url: str, start_at: float, results: multiprocessing.Queue[bool]) -> None:
    store = Store(url)
    lease = Lease(store, 60)
    while time.time() < start_at:
        time.sleep(0.001)
    results.put(lease.try_acquire() is None)
    store.close()


@pytest.mark.parametrize("before", ["free", "expired"])
def test_processes_racing_for_the_lease_exactly_one_wins(url: str, before: str) -> None:
    store = Store(url)  # the schema exists before the race
    if before == "expired":
        Lease(store, 0.01).acquire()  # a holder that died
    store.close()
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[bool] = ctx.Queue()
    start_at = time.time() + 3
    procs = [ctx.Process(target=_race, args=(url, start_at, results)) for _ in range(4)]
    for p in procs:
        p.start()
    wins = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sorted(wins) == [False, False, False, True]
