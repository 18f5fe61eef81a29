"""Files on any filesystem fsspec knows (local paths, s3://, hdfs://, ...): input expansion,
atomic writes, and done markers.

A write is atomic everywhere: on a filesystem that renames (local, HDFS) it goes to a temporary
name beside the target and is renamed into place when whole; on an object store (s3://, gs://,
az://), where a rename is a copy and a delete, it goes straight to the final key as one upload
that becomes visible only when it completes, and is aborted (never committed) when the block
fails. Credentials and endpoints come from the store's own configuration (for S3, botocore's
``AWS_*`` variables, ``AWS_ENDPOINT_URL`` included) or fsspec's (``FSSPEC_S3_*``)."""

import io
import os
import posixpath
import uuid
from contextlib import contextmanager
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from vlcurate.pipeline import uploads
from vlcurate.pipeline.objectstore import (  # noqa: F401 (OBJECT_STORES, open_sized, ...: API)
    OBJECT_STORES,
    abort_uploads,
    folder_sizes,
    is_object_store,
    open_sized,
    read_whole,
    webdataset_reads_urls,
    whole_object,
)

LISTING_SUFFIXES = (".paths", ".paths.gz", ".txt", ".txt.gz", ".lst")


def cache_home() -> Path:
    """Where curate keeps what it makes once and reuses (the mini web's CLIP, the converted
    language model): ``$CURATE_CACHE``, default ``~/.cache/curate``."""
    return Path(os.environ.get("CURATE_CACHE") or Path.home() / ".cache" / "curate")


class InputError(ValueError):
    """An input that does not exist or cannot be expanded: raised before any work starts."""


def join(base: str, *parts: str) -> str:
    return (
        posixpath.join(base.rstrip("/"), *parts) if "://" in base else posixpath.join(base, *parts)
    )


def _is_listing(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    return ".warc" not in name and name.endswith(LISTING_SUFFIXES)


def expand_inputs(specs: list[str], prefix: str | None = None) -> list[str]:
    """Expand paths, globs and listing files (one path a line, like Common Crawl's
    ``warc.paths.gz``) into a sorted, de-duplicated list of WARC URLs.

    Relative lines of a listing are joined to ``prefix`` (for Common Crawl, its data URL), or
    else to the listing's own folder. Every local path is checked; a missing one raises
    :class:`InputError` naming it.
    """
    found: list[str] = []
    for spec in specs:
        fs, path = fsspec.core.url_to_fs(spec)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        unstrip = fs.unstrip_protocol if protocol != "file" else str
        if any(c in path for c in "*?["):
            matches = fs.glob(path, detail=True)  # one listing, not a request per match
            if not matches:
                raise InputError(f"input glob matched no file: {spec}")
            found.extend(unstrip(m) for m, i in matches.items() if i["type"] != "directory")
            continue
        if not fs.exists(path):
            raise InputError(f"input not found: {spec}")
        if fs.isdir(path):
            raise InputError(f"input is a folder, give a glob such as {spec.rstrip('/')}/*.warc.gz")
        if _is_listing(path):
            listing_dir = spec.rsplit("/", 1)[0] if "/" in spec else "."
            with fsspec.open(spec, "rt", compression="infer") as f:
                for line in f:
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    if "://" not in line and not line.startswith("/"):
                        line = join(prefix or listing_dir, line)
                    found.append(line)
            continue
        found.append(unstrip(path))
    missing = [p for p in found if "://" not in p and not fsspec.filesystem("file").exists(p)]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"input not found: {missing[0]}{more}")
    return sorted(set(found))


def absolute(url: str) -> str:
    """A local path made absolute (executors do not share the driver's working directory);
    URLs with a scheme other than file:// are returned as they are."""
    if "://" in url and not url.startswith("file://"):
        return url
    return fsspec.core.url_to_fs(url)[1]


def exists(url: str) -> bool:
    uploads.settle(url)
    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(path)


def isfile(url: str) -> bool:
    """On S3 one listing (s3fs's ``isfile`` sends a HEAD, then lists on a miss)."""
    uploads.settle(url)
    fs, path = fsspec.core.url_to_fs(url)
    parent, _, name = path.rstrip("/").rpartition("/")
    found = folder_sizes(fs, parent, name) if parent else None
    return name in found if found is not None else fs.isfile(path)


def isdir(url: str) -> bool:
    uploads.settle(url)
    fs, path = fsspec.core.url_to_fs(url)
    return fs.isdir(path)


def remove_tree(url: str) -> None:
    """Delete a folder and everything in it, if it exists."""
    uploads.settle(url)
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def remove(url: str) -> None:
    """Delete a file if it exists."""
    uploads.settle(url)
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path)


def move(source: str, target: str) -> None:
    """Rename ``source`` to ``target`` (both on one filesystem), replacing it."""
    uploads.settle(source)
    fs, path = fsspec.core.url_to_fs(source)
    fs.mv(path, fsspec.core.url_to_fs(target)[1])


def glob(pattern: str) -> list[str]:
    """The files matching ``pattern`` (a path or URL), sorted, spelled as the pattern is (an
    ``s3://`` pattern gives ``s3://`` URLs)."""
    uploads.settle(pattern)
    fs, path = fsspec.core.url_to_fs(pattern)
    unstrip = fs.unstrip_protocol if "://" in pattern else str
    return sorted(unstrip(p) for p in fs.glob(path))


def names(url: str, suffix: str = "") -> set[str]:
    """The names (without ``suffix``) of the files in the folder ``url`` that end with it, in
    one listing (not a request per file, on an object store); empty if there is no folder."""
    found = sizes(url)
    return {n.removesuffix(suffix) for n in found if n.endswith(suffix)}


def sizes(url: str, prefix: str = "") -> dict[str, int]:
    """``{name: size}`` of the files right in the folder ``url`` whose names start with
    ``prefix``, in one listing (on S3, of those names only); empty if there is no folder."""
    uploads.settle(url)
    fs, path = fsspec.core.url_to_fs(url)
    found = folder_sizes(fs, path, prefix)
    if found is not None:
        return found
    try:
        listed = fs.ls(path, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found = ((i["name"].rstrip("/").rsplit("/", 1)[-1], i) for i in listed)
    return {n: i["size"] for n, i in found if i["type"] != "directory" and n.startswith(prefix)}


def read_table(url: str, **kwargs):
    """``pyarrow.parquet.read_table`` of a file or folder on any fsspec filesystem (never
    Arrow's own S3 client, which knows nothing of fsspec's configuration). A ``.parquet`` file
    on an object store is fetched whole, in one request, and read from memory."""
    uploads.settle(url)
    fs, path = fsspec.core.url_to_fs(url)
    if is_object_store(fs) and path.endswith(".parquet"):
        try:
            return pq.read_table(pa.BufferReader(read_whole(fs, path)), **kwargs)
        except (FileNotFoundError, IsADirectoryError):  # a folder named *.parquet (Spark's)
            pass
    return pq.read_table(path, filesystem=fs, **kwargs)


def parquet_metadata(url: str):
    """One parquet file's footer: ``.num_rows``, ``.schema.to_arrow_schema()``."""
    uploads.settle(url)
    with fsspec.open(url, "rb") as f:
        return pq.read_metadata(f)


def read_bytes(url: str) -> bytes:
    """A whole file, in one request on an object store (no HEAD first, as ``open`` makes)."""
    uploads.settle(url)
    fs, path = fsspec.core.url_to_fs(url)
    return read_whole(fs, path)


def read_text(url: str) -> str:
    """A whole UTF-8 text file (universal newlines, as ``open`` reads it)."""
    return io.TextIOWrapper(io.BytesIO(read_bytes(url)), encoding="utf-8").read()


def makedirs(url: str) -> None:
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path, exist_ok=True)


@contextmanager
def atomic_open(url: str, mode: str = "wb"):
    """A file (``"wb"``, or text with ``"w"``/``"wt"``) that appears at ``url`` only if the
    block succeeds: renamed from a temporary name beside it, or on an object store uploaded
    under its final key, the upload aborted if the block fails."""
    fs, path = fsspec.core.url_to_fs(url)
    if is_object_store(fs):
        with whole_object(fs, path, mode) as f:
            yield f
        return
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open(tmp, mode) as f:
            yield f
        fs.mv(tmp, path)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise


def write_text_atomic(url: str, text: str) -> None:
    with atomic_open(url, "wt") as f:
        f.write(text)


@contextmanager
def parquet_writer(url: str, schema):
    """A ``pyarrow.parquet.ParquetWriter`` whose file appears only when complete."""
    with atomic_open(url, "wb") as f:
        writer = pq.ParquetWriter(f, schema, compression="zstd")
        try:
            yield writer
        finally:
            writer.close()


def remove_stale_temporaries(url: str) -> int:
    """Delete what a killed run left in a folder: ``*.tmp-*`` files, and on S3 the multipart
    uploads begun under it and never completed; returns how many."""
    fs, path = fsspec.core.url_to_fs(url)
    aborted = abort_uploads(fs, path)
    stale = [posixpath.join(path, n) for n in names(url) if ".tmp-" in n]  # one listing
    for p in stale:
        fs.rm(p)
    return len(stale) + aborted


def remove_what_killed_writers_left(url: str, folders: tuple[str, ...]) -> int:
    """:func:`remove_stale_temporaries` for the folders ``folders`` of ``url``; on an object
    store, where :func:`atomic_open` writes no temporary, only the unfinished uploads are
    looked for, in one listing for all the folders. Returns how many were removed."""
    fs, path = fsspec.core.url_to_fs(url)
    if is_object_store(fs):
        return abort_uploads(fs, path, folders)
    return sum(remove_stale_temporaries(join(url, f)) for f in folders)


def brace_pattern(paths: list[str]) -> str:
    """``['d/00000.tar', 'd/00001.tar']`` -> ``'d/{00000..00001}.tar'`` (webdataset's form);
    URLs (``s3://b/d/00000.tar``) keep their scheme."""
    if len(paths) == 1:
        return paths[0]
    folder, _, first = paths[0].rpartition("/")
    last = paths[-1].rpartition("/")[2]
    (stem, dot, suffix), end = first.partition("."), last.partition(".")[0]
    pattern = f"{{{stem}..{end}}}{dot}{suffix}"
    return f"{folder}/{pattern}" if folder else pattern


def expand_shards(shards: str | list[str]) -> list[str]:
    """A brace pattern (or a list of them) -> the shard URLs, in order."""
    import webdataset as wds

    webdataset_reads_urls()
    patterns = [shards] if isinstance(shards, str) else list(shards)
    return [url for p in patterns for url in wds.shardlists.expand_urls(p)]
