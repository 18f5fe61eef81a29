"""Per-host politeness across real threads and real (spawned) processes sharing one gate.

Overlap is judged from recorded request intervals (taken inside each lease, so they can only be
shorter than the lease); spacing is judged from the gate's own grant times (the clock read under
the lock), since a thread may be descheduled between its grant and its own clock read."""

import calendar
import email.utils
import glob
import json
import multiprocessing
import os
import random
import signal
import threading
import time
import uuid

import pytest

from vlcurate.pipeline.download import politeness
from vlcurate.pipeline.download.politeness import (
    HostGate,
    Lease,
    backoff_seconds,
    gate_path,
    remove_tables,
    retry_after_seconds,
)

SPAWN = multiprocessing.get_context("spawn")
HOSTS = {"a.example": 0.03, "b.example": 0.005, "c.example": 0.005}  # host -> delay
CONCURRENCY = 2
LEASE = 30.0
EPS = 1e-6  # grant times are the gate's own float arithmetic, not separate clock reads


@pytest.fixture
def key():
    """A run key of the test's own; its shared file is removed afterwards."""
    name = f"test-politeness-{uuid.uuid4().hex}"
    yield name
    remove_tables(name)


def _hammer(key, threads, per_thread, hold, seed, barrier, out):
    """One process: ``threads`` threads, each making ``per_thread`` "requests" (a sleep while
    holding the lease) to random hosts; writes (host, granted, start, end, pid) per request."""
    gate = HostGate(key, CONCURRENCY, LEASE)
    records, lock = [], threading.Lock()

    def work(index):
        rng = random.Random(seed * 1000 + index)
        for _ in range(per_thread):
            host = rng.choice(sorted(HOSTS))
            lease = gate.acquire(host, HOSTS[host], give_up_at=time.monotonic() + 60)
            if lease is None:
                with lock:
                    records.append((host, None, None, None, os.getpid()))
                continue
            start = time.monotonic()
            time.sleep(hold)
            end = time.monotonic()
            gate.release(lease)
            with lock:
                records.append((host, lease.expires - LEASE, start, end, os.getpid()))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    barrier.wait(timeout=60)  # both processes start together, so they contend
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    gate.close()
    with open(out, "w") as f:
        json.dump(records, f)


def _most_at_once(intervals) -> int:
    """The largest number of intervals open at one moment (an end before a start at a tie)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_threads_of_two_processes_keep_concurrency_and_delay_per_host(key, tmp_path):
    gate = HostGate(key, CONCURRENCY, LEASE)
    assert len({gate.bucket_of(h) for h in HOSTS}) == len(HOSTS)  # else they share limits
    barrier = SPAWN.Barrier(2)
    outs = [tmp_path / f"{i}.json" for i in range(2)]
    procs = [
        SPAWN.Process(target=_hammer, args=(key, 6, 8, 0.02, i, barrier, str(outs[i])))
        for i in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    records = [tuple(r) for out in outs for r in json.loads(out.read_text())]
    assert len(records) == 2 * 6 * 8
    assert [r for r in records if r[1] is None] == []
    most = {}
    for host, delay in HOSTS.items():
        mine = [r for r in records if r[0] == host]
        assert len({r[4] for r in mine}) == 2  # both processes asked this host
        most[host] = _most_at_once([(r[2], r[3]) for r in mine])
        assert most[host] <= CONCURRENCY, host
        grants = sorted(r[1] for r in mine)
        gaps = [b - a for a, b in zip(grants, grants[1:], strict=False)]
        assert min(gaps) >= delay - EPS, host
        assert all(r[1] <= r[2] + EPS for r in mine)  # the request began after its grant
    # The short-delay hosts were busy enough to use every slot: the bound above was reached.
    assert max(most["b.example"], most["c.example"]) == CONCURRENCY
    gate.close()


class _SlowNow(float):
    """A clock reading whose comparisons sleep: a thread descheduled in the middle of the
    gate's read-modify-write, every time rather than once in a million calls."""

    def __lt__(self, other):
        time.sleep(0.005)
        return float(self) < other

    def __ge__(self, other):
        time.sleep(0.005)
        return float(self) >= other


def test_threads_of_one_process_never_share_a_slot(key):
    """Record locks belong to the process, so they do not exclude its threads; the gate's
    thread locks must."""
    gate = HostGate(key, 1, LEASE)
    start, granted = threading.Barrier(6), []

    def work():
        start.wait(timeout=30)
        granted.append(gate.try_acquire("one.example", 0.0, now=_SlowNow(time.monotonic()))[0])

    workers = [threading.Thread(target=work) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len([lease for lease in granted if lease is not None]) == 1
    gate.close()


def _hold_and_wait(key, host, queue):
    gate = HostGate(key, 1, 2.0)
    lease = gate.acquire(host, 0.0, give_up_at=time.monotonic() + 30)
    queue.put(lease.expires)
    time.sleep(120)  # killed long before this


def test_a_lease_of_a_killed_process_frees_itself(key):
    queue = SPAWN.Queue()
    child = SPAWN.Process(target=_hold_and_wait, args=(key, "slow.example", queue))
    child.start()
    expires = queue.get(timeout=60)
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    gate = HostGate(key, 1, 2.0)
    lease, retry_at = gate.try_acquire("slow.example", 0.0, now=expires - 1.0)
    assert lease is None and retry_at == expires  # still held, by the dead process
    lease = gate.acquire("slow.example", 0.0, give_up_at=time.monotonic() + 15)
    assert lease is not None
    assert lease.expires - 2.0 >= expires - EPS  # granted once the dead lease ran out
    gate.close()


def test_hold_off_delays_the_next_acquire_and_never_shortens(key):
    gate = HostGate(key, CONCURRENCY, LEASE)
    lease, _ = gate.try_acquire("busy.example", 0.0)
    gate.release(lease)
    until = time.monotonic() + 0.3
    gate.hold_off("busy.example", until)
    gate.hold_off("busy.example", until - 0.2)  # an earlier hold does not shorten it
    assert gate.try_acquire("busy.example", 0.0, now=until - 0.1) == (None, until)
    assert gate.try_acquire("other.example", 0.0)[0] is not None  # another bucket is free
    lease = gate.acquire("busy.example", 0.0, give_up_at=time.monotonic() + 10)
    assert lease is not None and lease.expires - LEASE >= until
    assert gate.acquire("busy.example", 60.0) is not None  # a slot is left, delay was 0
    assert gate.acquire("busy.example", 0.0, give_up_at=time.monotonic() + 0.1) is None
    gate.close()


def test_a_late_release_cannot_free_the_next_holder(key):
    gate = HostGate(key, 1, 1.0)
    first, _ = gate.try_acquire("h.example", 0.0, now=100.0)
    second, _ = gate.try_acquire("h.example", 0.0, now=101.5)  # first ran out at 101
    assert (first.slot, second.slot) == (0, 0)
    gate.release(first)
    assert gate.try_acquire("h.example", 0.0, now=101.6) == (None, second.expires)
    gate.release(second)
    assert gate.try_acquire("h.example", 0.0, now=101.7)[0] == Lease(first.bucket, 0, 102.7)
    gate.close()


def test_gates_with_other_keys_are_independent(key):
    other = key + "-other"
    try:
        one, two = HostGate(key, 1, LEASE), HostGate(other, 1, LEASE)
        assert gate_path(key) != gate_path(other)
        assert one.try_acquire("x.example", 0.0)[0] is not None
        assert one.try_acquire("x.example", 0.0)[0] is None
        assert two.try_acquire("x.example", 0.0)[0] is not None
        one.close()
        two.close()
    finally:
        remove_tables(other)


def _probe(key, queue):
    """In another process: is x.example taken? Then hold y.example off for a minute."""
    gate = HostGate(key, 1, LEASE)
    queue.put(gate.try_acquire("x.example", 0.0))
    until = time.monotonic() + 60
    gate.hold_off("y.example", until)
    queue.put(until)
    gate.close()


def test_the_same_key_in_two_processes_shares_state(key):
    gate = HostGate(key, 1, LEASE)
    mine, _ = gate.try_acquire("x.example", 0.0)
    queue = SPAWN.Queue()
    child = SPAWN.Process(target=_probe, args=(key, queue))
    child.start()
    theirs, retry_at = queue.get(timeout=60)
    until = queue.get(timeout=60)
    child.join(timeout=30)
    assert child.exitcode == 0
    assert theirs is None and retry_at == mine.expires
    assert gate.try_acquire("y.example", 0.0) == (None, until)
    gate.close()


def test_each_shape_is_a_table_of_its_own_and_a_bad_header_is_refused(key):
    """A resume at another concurrency must not be stopped by the table a killed run left."""
    two = HostGate(key, 2, LEASE, buckets=64)
    three = HostGate(key, 3, LEASE, buckets=64)
    assert two.path != three.path and two.path.endswith("-64x2")
    assert two.try_acquire("z.example", 0.0)[0] is not None
    assert three.try_acquire("z.example", 0.0)[0] is not None  # not the other table's slots
    two.close()
    three.close()
    assert sorted(glob.glob(gate_path(key))) == sorted([two.path, three.path])
    remove_tables(key)
    assert glob.glob(gate_path(key)) == []
    with open(gate_path(key, "64x2"), "wb") as f:
        f.write(politeness.HEADER.pack(politeness.MAGIC, 64, 5, b"\0" * 16))
    with pytest.raises(ValueError, match="64 buckets x 5 slots"):
        HostGate(key, 2, LEASE, buckets=64)  # the file's header disagrees with its name


def test_a_table_of_an_earlier_boot_is_forgotten(key):
    gate = HostGate(key, 2, LEASE, buckets=64)
    gate.hold_off("z.example", time.monotonic() + 3600)
    gate.close()
    with open(gate.path, "r+b") as f:
        f.seek(24)
        f.write(b"\xff" * 16)  # as if written before a reboot: its times mean nothing now
    again = HostGate(key, 2, LEASE, buckets=64)
    assert again.try_acquire("z.example", 0.0)[0] is not None
    again.close()


def test_the_shared_file_is_named_from_the_key_and_unlinked_at_the_end(key):
    path = gate_path(key, "16384x2")
    assert path == gate_path(key, "16384x2") != gate_path(key + "x", "16384x2")
    if os.access("/dev/shm", os.W_OK):
        assert path.startswith("/dev/shm/")
    gate = HostGate(key, 2, LEASE)
    assert gate.path == path
    assert os.path.getsize(path) == politeness.HEADER_SIZE + 16384 * 8 * 3
    remove_tables(key)  # gates still open keep their mapping
    assert not os.path.exists(path)
    gate.close()
    with pytest.raises(ValueError, match="closed"):
        gate.try_acquire("x.example", 0.0)


def test_retry_after_reads_seconds_and_http_dates():
    now = calendar.timegm((2015, 10, 21, 7, 28, 0))
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(" 3 ") == 3.0
    assert retry_after_seconds("-5") == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now_wall=now) == 30.0
    assert retry_after_seconds(email.utils.formatdate(now + 90, usegmt=True), now) == 90.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:27:00 GMT", now_wall=now) == 0.0  # past
    assert retry_after_seconds("Wednesday, 21-Oct-15 07:28:10 GMT", now_wall=now) == 10.0
    assert retry_after_seconds("Wed Oct 21 07:28:20 2015", now_wall=now) == 20.0  # asctime: GMT
    for garbage in (None, "", "  ", "soon", "nan", "inf", "0x10", "Wed, 41 Oct 2015", "1,5"):
        assert retry_after_seconds(garbage, now_wall=now) is None, garbage


def test_backoff_is_capped_retry_after_or_full_jitter():
    assert backoff_seconds(3, 7.0, cap=5.0, rng=random.Random(0)) == 5.0
    assert backoff_seconds(3, 2.0, cap=5.0, rng=random.Random(0)) == 2.0
    assert backoff_seconds(0, 0.0, cap=5.0, rng=random.Random(0)) == 0.0
    rng = random.Random(7)
    for attempt in range(8):
        bound = min(30.0, 0.5 * 2**attempt)
        waits = [backoff_seconds(attempt, None, 30.0, rng, base=0.5) for _ in range(200)]
        assert all(0.0 <= w <= bound for w in waits)
        assert max(waits) > 0.8 * bound and min(waits) < 0.2 * bound  # jitter fills the range
    assert 0.0 <= backoff_seconds(5000, None, 30.0, random.Random(1)) <= 30.0  # no overflow
    same = [backoff_seconds(4, None, 30.0, random.Random(3)) for _ in range(2)]
    assert same[0] == same[1]
