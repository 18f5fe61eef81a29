"""Files on any filesystem fsspec knows (local paths, s3://, hdfs://, ...): input expansion,
atomic writes (temporary name, then rename), and done markers."""

import os
import posixpath
import uuid
from contextlib import contextmanager
from pathlib import Path

import fsspec
import pyarrow.parquet as pq

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
            matches = sorted(fs.glob(path))
            if not matches:
                raise InputError(f"input glob matched no file: {spec}")
            found.extend(unstrip(m) for m in matches if not fs.isdir(m))
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
    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(path)


def isdir(url: str) -> bool:
    fs, path = fsspec.core.url_to_fs(url)
    return fs.isdir(path)


def remove_tree(url: str) -> None:
    """Delete a folder and everything in it, if it exists."""
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def remove(url: str) -> None:
    """Delete a file if it exists."""
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path)


def move(source: str, target: str) -> None:
    """Rename ``source`` to ``target`` (both on one filesystem), replacing it."""
    fs, path = fsspec.core.url_to_fs(source)
    fs.mv(path, fsspec.core.url_to_fs(target)[1])


def read_text(url: str) -> str:
    with fsspec.open(url, "rt") as f:
        return f.read()


def makedirs(url: str) -> None:
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path, exist_ok=True)


@contextmanager
def atomic_open(url: str, mode: str = "wb"):
    """Write to a temporary name beside ``url``; rename into place only if the block succeeds."""
    fs, path = fsspec.core.url_to_fs(url)
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
    """Delete ``*.tmp-*`` files a killed run left in a folder; returns how many."""
    fs, path = fsspec.core.url_to_fs(url)
    if not fs.exists(path):
        return 0
    stale = fs.glob(posixpath.join(path, "*.tmp-*"))
    for p in stale:
        fs.rm(p)
    return len(stale)


def brace_pattern(paths: list[str]) -> str:
    """``['d/00000.tar', 'd/00001.tar']`` -> ``'d/{00000..00001}.tar'`` (webdataset's form)."""
    first, last = Path(paths[0]), Path(paths[-1])
    if len(paths) == 1:
        return str(first)
    return str(first.parent / f"{{{first.stem}..{last.stem}}}{first.suffix}")


def expand_shards(shards: str | list[str]) -> list[str]:
    """A brace pattern (or a list of them) -> the shard URLs, in order."""
    import webdataset as wds

    patterns = [shards] if isinstance(shards, str) else list(shards)
    return [url for p in patterns for url in wds.shardlists.expand_urls(p)]
