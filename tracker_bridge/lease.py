"""One daemon per state store: a lease row that a daemon holds while it runs and renews well before it expires.

Two daemons on one store would each think the other's runs were interrupted by a crash, start them again in the
same workspace and fight over the cards. So `run` (and `run --once`) takes the lease first, and every change to it
is a compare-and-set in one statement (an INSERT that the primary key makes unique, or an UPDATE whose WHERE names
the expected holder or an expired lease), which SQLite and PostgreSQL both carry out atomically across processes
and machines. A holder that dies stops renewing; its lease is taken over once it has expired - or at once when it
ran on this machine, in this PID namespace, and its process is gone (a daemon restarted after a crash by systemd
should not wait out the lease).

Expiry is compared with the clock of the machine asking, so the machines sharing a PostgreSQL store need their
clocks in sync to within a small part of `[bridge] lease_seconds` (NTP does that).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import Integer, String, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tracker_bridge.store import Base, Store, utcnow

log = structlog.get_logger(__name__)


def machine_id() -> str:
    """This boot of this machine and this PID namespace (two containers share a boot id, not a namespace)."""
    parts = []
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        return ""  # not Linux: never end a lease early
    return ":".join(parts)


def process_gone(pid: int) -> bool:
    """Whether no process of this machine has `pid` (a process of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False

DAEMON = "daemon"


class LeaseRow(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))  # a new id per process: a restarted daemon is a new holder
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    # boot id + PID namespace: where `pid` means something. Only there may a dead pid end the lease early.
    machine: Mapped[str] = mapped_column(String(128), default="")
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]  # naive UTC, as every time in the store


@dataclass(frozen=True)
class Holder:
    holder: str
    host: str
    pid: int
    expires_at: datetime

    def describe(self) -> str:
        return f"tracker-bridge on {self.host} (pid {self.pid}) until {self.expires_at:%Y-%m-%d %H:%M:%S} UTC"


class LeaseHeld(Exception):
    """Another live daemon holds the state store."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder
        super().__init__(f"the state store is held by {holder.describe()}; stop it or use --standby")


class Lease:
    def __init__(self, store: Store, seconds: float, *, name: str = DAEMON) -> None:
        self.store = store
        self.seconds = seconds
        self.name = name
        self.me = Holder(uuid.uuid4().hex, socket.gethostname(), os.getpid(), utcnow())
        self.machine = machine_id()

    def _expiry(self) -> datetime:
        return utcnow() + timedelta(seconds=self.seconds)

    def holder(self) -> Holder | None:
        """Who holds the lease now (possibly expired); None when nobody ever took it or it was released."""
        with self.store.engine.connect() as conn:
            columns = select(LeaseRow.holder, LeaseRow.host, LeaseRow.pid, LeaseRow.expires_at)
            row = conn.execute(columns.where(LeaseRow.name == self.name)).first()
        return Holder(row.holder, row.host, row.pid, row.expires_at) if row is not None else None

    def try_acquire(self) -> Holder | None:
        """Take the lease if it is free, expired or already ours. None when taken; else the live holder."""
        now = utcnow()
        values = {
            "holder": self.me.holder,
            "host": self.me.host,
            "pid": self.me.pid,
            "machine": self.machine,
            "expires_at": self._expiry(),
        }
        with self.store.lock:
            try:
                with self.store.engine.begin() as conn:
                    conn.execute(insert(LeaseRow).values(name=self.name, acquired_at=now, **values))
                return None
            except IntegrityError:
                pass  # a row exists: take it over only if it expired (or is ours)
            with self.store.engine.begin() as conn:
                taken = conn.execute(
                    update(LeaseRow)
                    .where(LeaseRow.name == self.name)
                    .where((LeaseRow.expires_at < now) | (LeaseRow.holder == self.me.holder))
                    .values(acquired_at=now, **values)
                ).rowcount
            if taken != 1:
                taken = self._take_from_dead_holder(now, values)
        if taken == 1:
            return None
        current = self.holder()
        return current if current is not None else self.try_acquire()  # released in between: try again

    def _take_from_dead_holder(self, now: datetime, values: dict[str, object]) -> int:
        """Take a live lease whose holder's process is gone from this machine; 1 when taken."""
        if not self.machine:
            return 0
        with self.store.engine.connect() as conn:
            row = conn.execute(
                select(LeaseRow.holder, LeaseRow.pid, LeaseRow.machine).where(LeaseRow.name == self.name)
            ).first()
        if row is None or row.machine != self.machine or not process_gone(row.pid):
            return 0
        with self.store.engine.begin() as conn:
            taken = conn.execute(
                update(LeaseRow)
                .where(LeaseRow.name == self.name, LeaseRow.holder == row.holder)  # still that dead holder
                .values(acquired_at=now, **values)
            ).rowcount
        if taken == 1:
            log.warning("lease.taken_from_dead_holder", pid=row.pid, hint="the previous daemon on this machine died")
        return int(taken)

    def acquire(self, *, standby: bool = False, stop: threading.Event | None = None) -> None:
        """Take the lease; raise LeaseHeld when a live daemon holds it, or with `standby` wait until it is free."""
        stop = stop or threading.Event()
        announced = False
        while True:
            current = self.try_acquire()
            if current is None:
                log.info("lease.acquired", host=self.me.host, pid=self.me.pid, seconds=self.seconds)
                return
            if not standby:
                raise LeaseHeld(current)
            if not announced:
                log.info("lease.standby", held_by=current.describe())
                announced = True
            # Check again a few times per lease: the takeover comes soon after the holder's lease expires.
            if stop.wait(max(0.2, min(self.seconds / 4, 5.0))):
                raise LeaseHeld(current)

    def renew(self) -> bool:
        """Push the expiry forward; False when the lease is no longer ours (it expired and another took it)."""
        with self.store.lock, self.store.engine.begin() as conn:
            kept = conn.execute(
                update(LeaseRow)
                .where(LeaseRow.name == self.name, LeaseRow.holder == self.me.holder)
                .values(expires_at=self._expiry())
            ).rowcount
        return kept == 1

    def release(self) -> None:
        """Give the lease up (a clean stop): a standby daemon takes over at once instead of after the expiry."""
        with self.store.lock, self.store.engine.begin() as conn:
            conn.execute(delete(LeaseRow).where(LeaseRow.name == self.name, LeaseRow.holder == self.me.holder))


class LeaseKeeper:
    """Renews a lease from its own thread, a few times per lease, whatever the daemon is busy with (a long cycle,
    `run --once` waiting for its runs). Calls `on_lost` once if the lease was lost."""

    def __init__(self, lease: Lease, on_lost: Callable[[], None]) -> None:
        self.lease = lease
        self.on_lost = on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def _loop(self) -> None:
        interval = self.lease.seconds / 3
        while not self._stop.wait(interval):
            try:
                kept = self.lease.renew()
            except Exception:  # a store hiccup: try again soon, the lease has two more renewals of slack
                log.exception("lease.renew_failed")
                continue
            if not kept:
                log.error("lease.lost", hint="another daemon took the state store over; this one stops")
                self.on_lost()
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
