"""Reading WebDataset shards for the DataLoader workers.

Each worker reads its share of every shard (sample ``i`` goes to worker ``i % workers``), so
every worker must find the sample boundaries of the whole shard. ``tarfile`` parses a header in
about 25 us; an img2dataset shard of 10,000 samples has 30,000 members, so each worker would
spend most of a second per shard in headers alone. :func:`tar_index` reads the plain ustar
headers img2dataset and webdataset write directly (name and size at fixed offsets, and the
pax header webdataset puts before each member; about 3 us each) and hands anything else (GNU
long names, links) to ``tarfile``. :func:`read_index` also says whether the tar is whole.
"""

import atexit
import hashlib
import os
import shutil
import tarfile
import tempfile
import threading

import fsspec
import torch

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff")
BLOCK = 512
SPOOL_BYTES = 4 * 2**30  # at most this much of object-store tars on local disk at once
_SPOOLED: dict[str, str] = {}  # object-store URL -> its local copy (DataLoader workers fork)
_SPOOL = {"dir": None, "bytes": 0}
_SPOOL_LOCK = threading.Lock()


class _NeedTarfile(Exception):
    pass


def _header(header: bytes) -> tuple[bytes, str, int]:
    """A plain ustar header's type, path and size."""
    typeflag = header[156:157]
    size_field = header[124:136]
    if typeflag not in (b"0", b"\0", b"5", b"x") or size_field[:1] in (b"\x80", b"\xff"):
        raise _NeedTarfile  # GNU long names, global pax headers, links, base-256 sizes
    if sum(header[:148]) + sum(header[156:]) + 8 * 32 != int(header[148:156].strip(b" \0"), 8):
        raise _NeedTarfile  # not a header we understand: let tarfile decide
    name = header[:100].split(b"\0", 1)[0]
    prefix = header[345:500].split(b"\0", 1)[0] if header[257:262] == b"ustar" else b""
    path = (prefix + b"/" + name if prefix else name).decode("utf-8", "replace")
    return typeflag, path, int(size_field.strip(b" \0") or b"0", 8)


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    """A pax extended header's ``LENGTH KEY=VALUE\\n`` records (webdataset writes ``mtime``)."""
    records, at = {}, 0
    while at < len(data) and data[at : at + 1] != b"\0":
        space = data.index(b" ", at)
        length = int(data[at:space])
        if length <= space - at:
            raise ValueError("not a pax record")  # let tarfile decide
        key, _, value = data[space + 1 : at + length - 1].partition(b"=")
        records[key] = value
        at += length
    return records


def _fast_index(f) -> tuple[list[tuple[str, int, int]], bool]:
    """The members, and whether the tar ends with its end-of-archive block (a tar cut anywhere,
    at a header boundary or inside a member, has none)."""
    members, offset, pax = [], 0, {}
    while True:
        f.seek(offset)
        header = f.read(BLOCK)
        if len(header) < BLOCK:
            return members, False
        if header.count(0) == BLOCK:
            return members, True
        typeflag, path, size = _header(header)
        if typeflag == b"x":  # the next member's pax header: a long path or size may be in it
            pax = _pax_records(f.read(size))
        else:
            path = pax[b"path"].decode("utf-8", "replace") if b"path" in pax else path
            size = int(pax[b"size"]) if b"size" in pax else size
            if typeflag != b"5":
                members.append((path, offset + BLOCK, size))
            pax = {}
        offset += BLOCK + (size + BLOCK - 1) // BLOCK * BLOCK


def _tarfile_index(f) -> tuple[list[tuple[str, int, int]], bool]:
    f.seek(0)
    members = []
    with tarfile.open(fileobj=f, mode="r:") as tar:
        try:
            members += ((m.name, m.offset_data, m.size) for m in tar if m.isfile())
        except tarfile.ReadError:  # cut inside a member or between a pax header and its member
            return members, False
        end = tar.offset  # where tarfile stopped: the end-of-archive block, if whole
    f.seek(end)
    block = f.read(BLOCK)
    return members, len(block) == BLOCK and block.count(0) == BLOCK


def read_index(f) -> tuple[list[tuple[str, int, int]], bool]:
    """``(name, data offset, size)`` of every regular file of an uncompressed tar, in order,
    and whether the tar is whole (it reads to its end-of-archive block)."""
    try:
        return _fast_index(f)
    except (_NeedTarfile, ValueError):
        return _tarfile_index(f)


def tar_index(f) -> list[tuple[str, int, int]]:
    """The members of :func:`read_index`, whole or not."""
    return read_index(f)[0]


def sample_key(path: str) -> str:
    """A member's sample: the files of one sample are adjacent and share the name before the
    first dot (``dir/000010005.jpg`` -> ``000010005``)."""
    return path.rpartition("/")[2].partition(".")[0]


def sample_count(members: list[tuple[str, int, int]]) -> int:
    keys = [sample_key(path) for path, _, _ in members]
    return sum(1 for n, key in enumerate(keys) if n == 0 or key != keys[n - 1])


def spool_folder() -> str:
    """The folder of this process's local copies, made once (before any DataLoader worker
    forks, so that the workers know where the copies made later are)."""
    with _SPOOL_LOCK:
        if _SPOOL["dir"] is None:
            _SPOOL["dir"] = tempfile.mkdtemp(prefix="curate-spool-")
            atexit.register(shutil.rmtree, _SPOOL["dir"], True)
        return _SPOOL["dir"]


def spool_path(url: str) -> str:
    """Where :func:`spool` puts the local copy of ``url``: a name of the URL alone."""
    digest = hashlib.sha1(url.encode()).hexdigest()[:16]
    return os.path.join(spool_folder(), f"{digest}-{url.rsplit('/', 1)[-1]}")


def spool(url: str, source, size: int) -> str | None:
    """Copy the object-store tar ``url`` from the open file ``source`` to local disk, where
    :func:`tar_samples` reads it instead of fetching it again; None when the copies would pass
    ``SPOOL_BYTES``. The shard check reads every tar whole, so the scoring then reads each
    shard from the store once, not twice."""
    unspool(url)  # checked again: one copy, the new one
    local = spool_path(url)
    with _SPOOL_LOCK:  # shards are checked in threads
        if _SPOOL["bytes"] + size > SPOOL_BYTES:
            return None
        _SPOOL["bytes"] += size
    try:
        with open(local, "wb") as out:
            shutil.copyfileobj(source, out, 8 << 20)
    except BaseException:
        with _SPOOL_LOCK:
            _SPOOL["bytes"] -= size
        if os.path.exists(local):
            os.remove(local)
        raise
    with _SPOOL_LOCK:
        _SPOOLED[url] = local
    return local


def spooled(url: str) -> bool:
    """Whether a local copy of ``url`` is there (at :func:`spool_path`)."""
    with _SPOOL_LOCK:
        return url in _SPOOLED


def unspool(url: str) -> None:
    """Delete the local copy of ``url``, if there is one."""
    with _SPOOL_LOCK:
        local = _SPOOLED.pop(url, None)
        if local is not None:
            _SPOOL["bytes"] -= os.path.getsize(local)
    if local is not None:
        os.remove(local)


def tar_samples(shard: str, wanted=None, source: str | None = None):
    """The samples of a WebDataset tar, in order, as ``(index, {"__key__": ..., "jpg": bytes,
    ...})`` (the files of one sample are adjacent and share the name before the first dot).
    With ``wanted(index)``, other samples are skipped without reading their bytes. The last
    thing yielded is ``(count, None)``: how many samples the shard holds. The tar is read from
    ``source`` when given, else from the local copy the shard check made (:func:`spool`), if
    any."""
    with fsspec.open(source or _SPOOLED.get(shard, shard), "rb") as f:
        index, key, sample = -1, None, {}
        for path, offset, size in tar_index(f):
            name, _, ext = path.rpartition("/")[2].partition(".")  # as sample_key
            if name != key:
                if sample:
                    yield index, sample
                index, key, sample = index + 1, name, {}
            if wanted is None or wanted(index):
                f.seek(offset)
                sample["__key__"] = key
                sample[ext] = f.read(size)
        if sample:
            yield index, sample
    yield index + 1, None


def samples(shard: str, wanted=None):
    """:func:`tar_samples` without the closing count."""
    return ((i, s) for i, s in tar_samples(shard, wanted) if s is not None)


def image_bytes(sample: dict) -> bytes:
    return next((sample[ext] for ext in IMAGE_EXTENSIONS if sample.get(ext)), b"")


def images_at(wanted: dict[str, dict[int, object]]) -> dict[object, bytes]:
    """``{shard path: {sample index: name}}`` -> ``{name: image bytes}``, each shard read once,
    skipping the samples not asked for without reading their bytes."""
    found = {}
    for shard, by_index in wanted.items():
        for index, sample in samples(shard, by_index.__contains__):
            found[by_index[index]] = image_bytes(sample)
    return found


class ShardStream(torch.utils.data.IterableDataset):
    """The samples of several shards, one shard after the other, each turned into a dict by
    ``work(index, sample)`` in the worker processes, with ``shard`` (its position in
    ``shards``) added. Sample ``i`` of a shard goes to worker ``i % workers`` (only the samples
    in ``indices[shard]``, when given). After its share of a shard each worker yields
    ``{"shard": n, "end": count}``: when every worker's end has arrived, the shard is whole.
    ``work`` is built once per worker, so detectors load once per process, not once per shard.
    With ``verdicts`` (:class:`~vlcurate.pipeline.score.checks.Verdicts`), each shard is read
    only once its check has taken it, and from where the check says; a refused shard is not
    read, and each worker yields ``{"shard": n, "end": 0}`` for it.
    """

    def __init__(self, shards: list[str], work_factory, indices=None, verdicts=None):
        self.shards, self.work_factory, self.indices = shards, work_factory, indices
        self.verdicts = verdicts

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        work = self.work_factory()
        for n, shard in enumerate(self.shards):
            only = self.indices[n] if self.indices is not None else None

            def wanted(index: int) -> bool:
                return index % workers == worker and (only is None or index in only)  # noqa: B023

            source = None  # without verdicts: the local copy the check made, if any
            if self.verdicts is not None and (source := self.verdicts.wait(n)) is None:
                yield {"shard": n, "end": 0}  # refused: not read
                continue
            for index, sample in tar_samples(shard, wanted, source):
                if sample is None:
                    yield {"shard": n, "end": index}
                else:
                    yield {"shard": n, **work(index, sample)}
