"""What differs on an object store (S3, GCS, Azure), where a rename is a copy and a delete and
an upload is atomic: writes go to the final key and are aborted on failure, a killed run's
multipart uploads are aborted, listings are not cached, and webdataset opens the URLs through
fsspec. :mod:`vlcurate.pipeline.storage` uses these; nothing else needs to."""

import importlib
import io
from contextlib import contextmanager

import fsspec

from vlcurate.pipeline import uploads

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
    upload; a small object was never sent). Inside :func:`vlcurate.pipeline.uploads.
    in_background` the ``close()`` runs in an upload thread."""
    raw = fs.open(path, "wb")
    f = raw if "b" in mode else io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    try:
        yield f
        if f is not raw:
            f.detach()
    except BaseException:
        raw.discard()
        raw.closed = True  # so that garbage collection does not commit it either
        raise
    background = uploads.active()
    if background is None:
        raw.close()
    else:
        background.submit(path, raw.close)


def read_whole(fs, path: str) -> bytes:
    """A whole object in one GET: s3fs's ``cat_file`` sends a HEAD first, to split a large
    object into concurrent ranges, unless told to fetch it in one."""
    if "s3" in _protocols(fs):
        return fs.cat_file(path, max_concurrency=1)
    return fs.cat_file(path)


def open_sized(fs, path: str, size: int | None):
    """``fs.open(path, "rb")`` of a file whose size a listing gave: on S3 no HEAD is sent (s3fs
    asks for the file's details at the first read otherwise)."""
    if size is None or "s3" not in _protocols(fs):
        return fs.open(path, "rb")
    f = fs.open(path, "rb", size=size)
    f.details = {"name": path, "size": size, "type": "file"}
    return f


def abort_uploads(fs, path: str, folders: tuple[str, ...] = ("",)) -> int:
    """Abort the S3 multipart uploads begun under the folders ``folders`` of ``path`` (``""``:
    all of it) and never completed (a killed writer's), found in one listing; returns how
    many. Nothing to do elsewhere."""
    if "s3" not in _protocols(fs):
        return 0
    bucket, _, key = path.partition("/")
    prefix = key.rstrip("/") + "/" if key else ""
    under = tuple(prefix + f.strip("/") + "/" if f.strip("/") else prefix for f in folders)
    uploads = []
    for page in _pages(fs, "list_multipart_uploads", "Uploads", Bucket=bucket, Prefix=prefix):
        uploads += (u for u in page if u["Key"].startswith(under))
    for upload in uploads:
        fs.abort_mpu(bucket, upload["Key"], upload["UploadId"])
    return len(uploads)


def _pages(fs, method: str, field: str, **kwargs):
    """The ``field`` of each page of an S3 listing (``list_objects_v2``: ``ContinuationToken``;
    ``list_multipart_uploads``: ``KeyMarker``/``UploadIdMarker``)."""
    while True:
        answer = fs.call_s3(method, **kwargs)
        yield answer.get(field, [])
        if not answer.get("IsTruncated"):
            return
        if "NextContinuationToken" in answer:
            kwargs["ContinuationToken"] = answer["NextContinuationToken"]
        else:
            kwargs["KeyMarker"] = answer["NextKeyMarker"]
            kwargs["UploadIdMarker"] = answer["NextUploadIdMarker"]


def folder_sizes(fs, path: str, prefix: str = "") -> dict[str, int] | None:
    """``{name: size}`` of the objects right in the S3 folder ``path`` whose names start with
    ``prefix``, in one request a thousand objects (s3fs's ``ls`` takes three for a folder that
    is not there, its ``exists`` a HEAD per file); None when ``fs`` is not S3."""
    if "s3" not in _protocols(fs):
        return None
    bucket, _, key = fs._strip_protocol(path).rstrip("/").partition("/")
    folder = key + "/" if key else ""
    found = {}
    kwargs = {"Bucket": bucket, "Prefix": folder + prefix, "Delimiter": "/"}
    for page in _pages(fs, "list_objects_v2", "Contents", **kwargs):
        found.update((o["Key"][len(folder) :], o["Size"]) for o in page if o["Key"] != folder)
    return found


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
