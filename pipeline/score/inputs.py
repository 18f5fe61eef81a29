"""What the score stage accepts as input, and the reasons it refuses a shard or drops a sample.

A raw shard is img2dataset's three files: ``NNNNN.tar``, its parquet sidecar ``NNNNN.parquet``
(one row per URL tried, ``status == "success"`` for those in the tar) and ``NNNNN_stats.json``
(img2dataset's own done marker, written last). :func:`check_shard` takes a shard only when it is
whole: all three files there, the tar read to its end-of-archive block, and as many samples in
the tar as successes in the sidecar. It reads the tar's headers only (one 512-byte block per
member), not the images, which the scoring reads later anyway; on an object store, where those
headers take the whole tar to reach, it keeps the copy it fetched for the scoring to read.

(These reason constants could move to :mod:`vlcurate.schemas.score`, beside the decode
statuses.)
"""

import tarfile

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.score.shards import read_index, sample_count, spool, unspool

# --- a shard refused (counted in stats.json's ``units``, named in ``refused_units``) ----------
NO_STATS_JSON = "no_stats_json"  # img2dataset's NNNNN_stats.json is missing: not finished
NO_SIDECAR = "no_parquet_sidecar"  # NNNNN.parquet is missing: select could not join it
BAD_SIDECAR = "unreadable_parquet_sidecar"  # NNNNN.parquet is there but not a parquet file
TRUNCATED_TAR = "truncated_tar"  # the tar ends before its end-of-archive block
COUNT_MISMATCH = "sample_count_mismatch"  # tar samples != the sidecar's successes

# --- a sample dropped (its row's status, counted in stats.json's ``dropped``) ----------------
BAD_JSON = "bad_json"  # the sample's .json is not a JSON object
BAD_TEXT = "bad_text"  # the sample's .txt is not UTF-8


def shard_name(shard: str) -> str:
    """``.../00012.tar`` -> ``00012``: the unit's name, and its outputs' stem."""
    return shard.rsplit("/", 1)[-1].removesuffix(".tar")


def sidecar_path(shard: str) -> str:
    return shard.removesuffix(".tar") + ".parquet"


def stats_path(shard: str) -> str:
    return shard.removesuffix(".tar") + "_stats.json"


def sidecar_successes(path: str, data: bytes | None = None) -> int:
    """Rows of img2dataset's sidecar with ``status == "success"`` (all rows without a status);
    ``data``: the file's bytes, already read."""
    parquet = pq.ParquetFile(pa.BufferReader(storage.read_bytes(path) if data is None else data))
    if "status" not in parquet.schema_arrow.names:
        return parquet.metadata.num_rows
    statuses = parquet.read(columns=["status"]).column("status").to_pylist()
    return sum(status == "success" for status in statuses)


def tar_samples_if_whole(shard: str, size: int | None = None) -> int | None:
    """The tar's sample count, or None when it does not read to its end; ``size``: the tar's
    size, when a listing gave it: on an object store the tar is then copied to local disk
    (:func:`~vlcurate.pipeline.score.shards.spool`) and indexed there, with no HEAD first."""
    fs, path = fsspec.core.url_to_fs(shard)
    try:
        with storage.open_sized(fs, path, size) as f:
            local = spool(shard, f, size) if size is not None else None
            if local is None:
                members, whole = read_index(f)
        if local is not None:
            with open(local, "rb") as f:
                members, whole = read_index(f)
    except tarfile.TarError:
        return None
    return sample_count(members) if whole else None


def check_shard(shard: str) -> str | None:
    """The reason to refuse the shard, or None when it is whole. On an object store its three
    files are looked for in one listing (of the names that begin with the shard's) and the tar
    is read once, at the size listed, into a local copy the scoring then reads: three requests
    a shard, not eight, and the tar fetched once, not twice."""
    reason = _check_shard(shard)
    if reason is not None:
        unspool(shard)
    return reason


def _check_shard(shard: str) -> str | None:
    there, size = storage.exists, None
    if storage.is_object_store(fsspec.core.url_to_fs(shard)[0]):
        folder, _, name = shard.rpartition("/")
        present = storage.sizes(folder, name.removesuffix(".tar"))
        there, size = (lambda path: path.rpartition("/")[2] in present), present.get(name)
    if not there(stats_path(shard)):
        return NO_STATS_JSON
    if not there(sidecar_path(shard)):
        return NO_SIDECAR
    count = tar_samples_if_whole(shard, size)
    if count is None:
        return TRUNCATED_TAR
    try:
        successes = sidecar_successes(sidecar_path(shard))
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        return BAD_SIDECAR
    return None if successes == count else COUNT_MISMATCH
