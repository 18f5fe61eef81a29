"""Reading WebDataset shards for the DataLoader workers.

Each worker reads its share of every shard (sample ``i`` goes to worker ``i % workers``), so
every worker must find the sample boundaries of the whole shard. ``tarfile`` parses a header in
about 25 us; an img2dataset shard of 10,000 samples has 30,000 members, so each worker would
spend most of a second per shard in headers alone. :func:`tar_index` reads the plain ustar
headers img2dataset and webdataset write directly (name and size at fixed offsets; about 3 us
each) and hands anything else (long names, pax headers, links) to ``tarfile``.
"""

import tarfile

import fsspec
import torch

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff")
BLOCK = 512


class _NeedTarfile(Exception):
    pass


def _fast_index(f) -> list[tuple[str, int, int]]:
    members, offset = [], 0
    while True:
        f.seek(offset)
        header = f.read(BLOCK)
        if len(header) < BLOCK or header.count(0) == BLOCK:
            return members
        typeflag = header[156:157]
        size_field = header[124:136]
        if typeflag not in (b"0", b"\0", b"5") or size_field[:1] in (b"\x80", b"\xff"):
            raise _NeedTarfile  # long names, pax/GNU extensions, links, base-256 sizes
        if sum(header[:148]) + sum(header[156:]) + 8 * 32 != int(header[148:156].strip(b" \0"), 8):
            raise _NeedTarfile  # not a header we understand: let tarfile decide
        name = header[:100].split(b"\0", 1)[0]
        prefix = header[345:500].split(b"\0", 1)[0] if header[257:262] == b"ustar" else b""
        size = int(size_field.strip(b" \0") or b"0", 8)
        if typeflag != b"5":
            path = (prefix + b"/" + name if prefix else name).decode("utf-8", "replace")
            members.append((path, offset + BLOCK, size))
        offset += BLOCK + (size + BLOCK - 1) // BLOCK * BLOCK


def tar_index(f) -> list[tuple[str, int, int]]:
    """``(name, data offset, size)`` of every regular file of an uncompressed tar, in order."""
    try:
        return _fast_index(f)
    except (_NeedTarfile, ValueError):
        f.seek(0)
        with tarfile.open(fileobj=f, mode="r:") as tar:
            return [(m.name, m.offset_data, m.size) for m in tar if m.isfile()]


def tar_samples(shard: str, wanted=None):
    """The samples of a WebDataset tar, in order, as ``(index, {"__key__": ..., "jpg": bytes,
    ...})`` (the files of one sample are adjacent and share the name before the first dot).
    With ``wanted(index)``, other samples are skipped without reading their bytes. The last
    thing yielded is ``(count, None)``: how many samples the shard holds."""
    with fsspec.open(shard, "rb") as f:
        index, key, sample = -1, None, {}
        for path, offset, size in tar_index(f):
            name, _, ext = path.rpartition("/")[2].partition(".")
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
    """

    def __init__(self, shards: list[str], work_factory, indices: list[set] | None = None):
        self.shards, self.work_factory, self.indices = shards, work_factory, indices

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        work = self.work_factory()
        for n, shard in enumerate(self.shards):
            only = self.indices[n] if self.indices is not None else None

            def wanted(index: int) -> bool:
                return index % workers == worker and (only is None or index in only)  # noqa: B023

            for index, sample in tar_samples(shard, wanted):
                if sample is None:
                    yield {"shard": n, "end": index}
                else:
                    yield {"shard": n, **work(index, sample)}
