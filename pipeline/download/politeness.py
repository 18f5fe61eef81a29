"""Per-host politeness shared by every thread and process of one download on one machine.

Shards run in several processes (spawned workers, or Spark tasks), each with many threads, and
any shard may hold any host; limits kept per process would multiply a host's load by N. So the
per-host state is a table in shared memory (a file under /dev/shm, else the temp folder) that
every process of a run opens by the run's key. On a cluster each machine has its own table: a
host may see (machines x host_concurrency) requests at once.

A 64-byte header, then buckets of float64s: ``next_allowed`` and ``concurrency`` lease slots
(expiry; 0 = free) in ``time.monotonic()`` seconds (CLOCK_MONOTONIC: one clock for a machine's
processes, in one time namespace). Host -> bucket is crc32 of the lowercased name; two hosts in
one bucket share limits (slower, never ruder). Leases expire after ``lease_seconds``, so a killed
process cannot wedge a host: make it longer than a request may take. ``fcntl.lockf`` on the
bucket's bytes excludes other processes; record locks belong to the process, so its threads
also take a striped ``threading.Lock``, and a process maps each file once (closing any
descriptor of it would drop the process's locks on it).
"""

import contextlib
import datetime
import email.utils
import fcntl
import glob
import hashlib
import math
import mmap
import os
import random
import struct
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass

RATE_LIMITED = "rate_limited"  # still 429 Too Many Requests after the last retry
SERVER_UNAVAILABLE = "server_unavailable"  # still 503 Service Unavailable after the last retry
HOST_BUSY = "host_busy"  # no lease for the host before the request's deadline
RETRY_STATUSES = {429: RATE_LIMITED, 503: SERVER_UNAVAILABLE}

MAGIC = b"VLCGATE1"
HEADER = struct.Struct("<8sqq16s")  # magic, buckets, concurrency, boot id
HEADER_SIZE = 64
STRIPES = 64  # thread locks per table; a bucket's lock is bucket % STRIPES
DOUBLE = struct.Struct("<d")


@dataclass(frozen=True)
class Lease:
    """A request slot; ``expires`` tells it from a later lease of that slot (a late release)."""

    bucket: int
    slot: int
    expires: float


def gate_path(key: str, shape: str = "*") -> str:
    """Run ``key``'s file for a table ``shape`` (``BUCKETSxSLOTS``; ``*``: all), under /dev/shm
    if writable, else the temp folder: a resume at another concurrency gets its own table."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    return os.path.join(folder or tempfile.gettempdir(), f"vlcurate-hostgate-{digest}-{shape}")


def remove_tables(key: str) -> None:
    """Remove every table of run ``key`` on this machine (the end of a run)."""
    for path in glob.glob(gate_path(key)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _boot_id() -> bytes:
    """This boot's id: a file left by an earlier boot holds times of another monotonic clock."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return bytes.fromhex(f.read().decode().strip().replace("-", ""))[:16].ljust(16, b"\0")
    except (OSError, ValueError):
        return b"\0" * 16


class _Table:
    """One process's mapping of one shared file, with its thread locks."""

    def __init__(self, path: str, buckets: int, concurrency: int):
        self.path, self.buckets, self.concurrency = path, buckets, concurrency
        self.stride = 8 * (1 + concurrency)
        self.size = HEADER_SIZE + buckets * self.stride
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(self.fd).st_uid != os.geteuid():
                raise PermissionError(f"{path} belongs to another user; not using it")
            self._set_up()
            self.map = mmap.mmap(self.fd, self.size)
        except BaseException:
            os.close(self.fd)
            raise
        self.locks = [threading.Lock() for _ in range(STRIPES)]
        self.users = 0

    def _set_up(self) -> None:
        """Size and stamp the file under a lock on its header: the first opener creates it, the
        others check it matches; a file of an earlier boot is zeroed (its times mean nothing)."""
        fcntl.lockf(self.fd, fcntl.LOCK_EX, HEADER_SIZE, 0)
        try:
            stamp = os.pread(self.fd, HEADER.size, 0).ljust(HEADER.size, b"\0")
            magic, buckets, concurrency, boot = HEADER.unpack(stamp)
            if magic != b"\0" * 8 and magic != MAGIC:
                raise ValueError(f"{self.path} is not a host gate table")
            if magic == MAGIC and (buckets, concurrency) != (self.buckets, self.concurrency):
                raise ValueError(
                    f"{self.path} has {buckets} buckets x {concurrency} slots, not "
                    f"{self.buckets} x {self.concurrency} as its name says"
                )
            now_boot = _boot_id()
            if magic == MAGIC and boot != now_boot:
                os.ftruncate(self.fd, HEADER_SIZE)  # drop the old times; regrown as zeros
            if os.fstat(self.fd).st_size < self.size:
                os.ftruncate(self.fd, self.size)
            if magic != MAGIC or boot != now_boot:
                header = HEADER.pack(MAGIC, self.buckets, self.concurrency, now_boot)
                os.pwrite(self.fd, header, 0)
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, HEADER_SIZE, 0)

    def lock(self, bucket: int) -> int:
        """Take the bucket (threads, then processes): its offset. (Not a generator context
        manager: that doubled the cost of a request.)"""
        offset = HEADER_SIZE + bucket * self.stride
        self.locks[bucket % STRIPES].acquire()
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX, self.stride, offset)
        except BaseException:
            self.locks[bucket % STRIPES].release()
            raise
        return offset

    def unlock(self, bucket: int) -> None:
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, self.stride, HEADER_SIZE + bucket * self.stride)
        finally:
            self.locks[bucket % STRIPES].release()


_TABLES: dict[str, _Table] = {}
_TABLES_LOCK = threading.Lock()


def _after_fork() -> None:
    """A forked child keeps the mapping and descriptor (its locks are its own) but not the
    parent's thread locks, which another thread may have held at the fork."""
    global _TABLES_LOCK
    _TABLES_LOCK = threading.Lock()
    for table in _TABLES.values():
        table.locks = [threading.Lock() for _ in range(STRIPES)]


os.register_at_fork(after_in_child=_after_fork)


class HostGate:
    """At most ``concurrency`` leases per host at once and ``delay`` seconds between grants, for
    every gate opened with the same ``key`` on this machine (see the module's docstring)."""

    def __init__(
        self,
        key: str,
        concurrency: int,
        lease_seconds: float,
        buckets: int = 16384,
        poll: float = 0.05,
    ):
        if concurrency < 1 or buckets < 1 or not lease_seconds > 0 or not poll > 0:
            raise ValueError("concurrency and buckets >= 1, lease_seconds and poll > 0")
        self.key, self.path = key, gate_path(key, f"{buckets}x{concurrency}")
        self.concurrency, self.lease_seconds, self.buckets = concurrency, lease_seconds, buckets
        self.poll = poll  # how often a waiter looks for a freed slot (releases are not signalled)
        self._slots = struct.Struct(f"<{concurrency}d")
        with _TABLES_LOCK:
            table = _TABLES.get(self.path)
            if table is None:
                table = _TABLES[self.path] = _Table(self.path, buckets, concurrency)
            table.users += 1
        self._table: _Table | None = table

    def bucket_of(self, host: str) -> int:
        """Stable across processes and runs (crc32; Python's hash() is salted per process)."""
        name = host.strip().rstrip(".").lower().encode("utf-8", "surrogatepass")
        return zlib.crc32(name) % self.buckets

    def try_acquire(self, host: str, delay: float, now: float | None = None):
        """``(lease, now)`` and no new request to the host before ``now + delay``; or ``(None,
        when to try again)``: the host's next allowed time, or when all slots are taken, the
        earliest expiry (a release may come sooner; :meth:`acquire` polls for it). The clock is
        read under the lock, so grants to one bucket are in time order."""
        table, bucket = self._open(), self.bucket_of(host)
        offset = table.lock(bucket)
        try:
            now = time.monotonic() if now is None else now
            (next_allowed,) = DOUBLE.unpack_from(table.map, offset)
            if now < next_allowed:
                return None, next_allowed
            slots = self._slots.unpack_from(table.map, offset + 8)
            free = next((i for i, expiry in enumerate(slots) if expiry <= now), None)
            if free is None:
                return None, min(slots)
            expires = now + self.lease_seconds
            DOUBLE.pack_into(table.map, offset, max(next_allowed, now + delay))
            DOUBLE.pack_into(table.map, offset + 8 * (1 + free), expires)
        finally:
            table.unlock(bucket)
        return Lease(bucket, free, expires), now

    def acquire(self, host: str, delay: float, give_up_at: float | None = None) -> Lease | None:
        """A lease for ``host``, sleeping until one is free; None once ``give_up_at``
        (monotonic seconds) has passed without one."""
        while True:
            lease, retry_at = self.try_acquire(host, delay)
            if lease is not None:
                return lease
            now = time.monotonic()
            if give_up_at is not None and now >= give_up_at:
                return None
            wake = min(retry_at, now + self.poll * random.uniform(0.5, 1.0))
            if give_up_at is not None:
                wake = min(wake, give_up_at)
            time.sleep(max(wake - now, 0.0))

    def release(self, lease: Lease) -> None:
        """Free the lease's slot, unless it ran out and the slot was granted again."""
        table = self._open()
        at = table.lock(lease.bucket) + 8 * (1 + lease.slot)
        try:
            if DOUBLE.unpack_from(table.map, at)[0] == lease.expires:
                DOUBLE.pack_into(table.map, at, 0.0)
        finally:
            table.unlock(lease.bucket)

    def hold_off(self, host: str, until: float) -> None:
        """No new request to ``host`` before ``until`` (monotonic seconds), e.g. after a 429 or
        503; never shortens a hold already there."""
        table, bucket = self._open(), self.bucket_of(host)
        offset = table.lock(bucket)
        try:
            (next_allowed,) = DOUBLE.unpack_from(table.map, offset)
            DOUBLE.pack_into(table.map, offset, max(next_allowed, until))
        finally:
            table.unlock(bucket)

    def close(self) -> None:
        """Unmap (when no other gate of this process uses the file); the file stays."""
        with _TABLES_LOCK:
            table, self._table = self._table, None
            if table is None:
                return
            table.users -= 1
            if table.users == 0:
                del _TABLES[table.path]
                table.map.close()
                os.close(table.fd)

    def _open(self) -> _Table:
        if self._table is None:
            raise ValueError("host gate is closed")
        return self._table

    def __reduce__(self):
        """Sent to a worker (spawn, Spark) as its key and limits: it opens the same table."""
        return HostGate, (self.key, self.concurrency, self.lease_seconds, self.buckets, self.poll)


def retry_after_seconds(value: str | None, now_wall: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110
    10.2.3); negative or past -> 0; missing or unreadable -> None."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000" or no zone: HTTP-dates are GMT
            when = when.replace(tzinfo=datetime.UTC)
        seconds = when.timestamp() - (time.time() if now_wall is None else now_wall)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def backoff_seconds(
    attempt: int, retry_after: float | None, cap: float, rng: random.Random, base: float = 1.0
) -> float:
    """How long to wait before retry ``attempt`` (0 = the first retry): the server's Retry-After
    capped at ``cap`` when it gave one, else full-jitter exponential backoff, uniform over
    ``[0, min(cap, base * 2**attempt)]`` (spreads retries of many threads apart)."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    return rng.uniform(0.0, min(cap, base * 2.0 ** min(max(attempt, 0), 60)))
