"""What differs on an object store (S3, GCS, Azure), where a rename is a copy and a delete and
an upload is atomic: writes go to the final key and are aborted on failure, a killed run's
multipart uploads are aborted, listings are not cached, and webdataset opens the URLs through
fsspec. :mod:`vlcurate.pipeline.storage` uses these; nothing else needs to."""

import importlib
import io
from contextlib import contextmanager

import fsspec

OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"}
# Executors write markers and shards the driver then looks for: a listing cached in this
# process would hide them, so S3 listings are not cached (FSSPEC_S3_USE_LISTINGS_CACHE overrides).
fsspec.config.conf.setdefault("s3", {}).setdefault("use_listings_cache", False)


def _protocols(fs) -> set[str]:
    return {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)


def is_object_store(fs) -> bool:
    """An fsspec filesystem where a rename is a copy (S3, GCS, Azure)."""
    return bool(_protocols(fs) & OBJECT_STORES)


@contextmanager
def whole_object(fs, path: str, mode: str):
    """A file written to its final key that appears only if the block succeeds. fsspec's
    buffered file commits what it has on ``close()``, also when a ``with`` is left on an
    exception: so close only on success, and otherwise ``discard()`` (s3fs aborts its multipart
    upload; a small object was never sent)."""
    raw = fs.open(path, "wb")
    f = raw if "b" in mode else io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    try:
        yield f
        if f is not raw:
            f.detach()
        raw.close()
    except BaseException:
        raw.discard()
        raw.closed = True  # so that garbage collection does not commit it either
        raise


def abort_uploads(fs, path: str) -> int:
    """Abort the S3 multipart uploads begun under the folder ``path`` and never completed (a
    killed writer's); returns how many. Nothing to do elsewhere."""
    if "s3" not in _protocols(fs):
        return 0
    bucket, _, key = path.partition("/")
    prefix = key.rstrip("/") + "/" if key else ""
    answer = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix)
    uploads = answer.get("Uploads", [])
    for upload in uploads:
        fs.abort_mpu(bucket, upload["Key"], upload["UploadId"])
    return len(uploads)


def webdataset_reads_urls() -> None:
    """Let webdataset open the object-store URLs it has no opener for (``s3://``, ``az://``:
    its own handlers are for files, ``pipe:``, HTTP and ``gs://`` with gsutil) through fsspec,
    with s3fs's credentials and endpoint; DataLoader workers forked later inherit it."""
    # the module: ``webdataset.gopen`` as an attribute is the function the package exports
    schemes = importlib.import_module("webdataset.gopen").gopen_schemes
    for scheme in sorted(OBJECT_STORES):
        schemes.setdefault(scheme, _gopen_fsspec)


def _gopen_fsspec(url: str, mode: str = "rb", bufsize: int = 8192, **kw):
    return fsspec.open(url, mode).open()
