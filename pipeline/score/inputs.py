"""What the score stage accepts as input, and the reasons it refuses a shard or drops a sample.

A raw shard is img2dataset's three files: ``NNNNN.tar``, its parquet sidecar ``NNNNN.parquet``
(one row per URL tried, ``status == "success"`` for those in the tar) and ``NNNNN_stats.json``
(img2dataset's own done marker, written last). :func:`check_shard` takes a shard only when it is
whole: all three files there, the tar read to its end-of-archive block, and as many samples in
the tar as successes in the sidecar. It reads the tar's headers only (one 512-byte block per
member), not the images, which the scoring reads later anyway.

(These reason constants could move to :mod:`vlcurate.schemas.score`, beside the decode
statuses.)
"""

import tarfile

import fsspec
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.score.shards import read_index, sample_count

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


def sidecar_successes(path: str) -> int:
    """Rows of img2dataset's sidecar with ``status == "success"`` (all rows without a status)."""
    with fsspec.open(path, "rb") as f:
        parquet = pq.ParquetFile(f)
        if "status" not in parquet.schema_arrow.names:
            return parquet.metadata.num_rows
        statuses = parquet.read(columns=["status"]).column("status").to_pylist()
    return sum(status == "success" for status in statuses)


def tar_samples_if_whole(shard: str) -> int | None:
    """The tar's sample count, or None when it does not read to its end."""
    try:
        with fsspec.open(shard, "rb") as f:
            members, whole = read_index(f)
    except tarfile.TarError:
        return None
    return sample_count(members) if whole else None


def check_shard(shard: str) -> str | None:
    """The reason to refuse the shard, or None when it is whole."""
    if not storage.exists(stats_path(shard)):
        return NO_STATS_JSON
    if not storage.exists(sidecar_path(shard)):
        return NO_SIDECAR
    count = tar_samples_if_whole(shard)
    if count is None:
        return TRUNCATED_TAR
    try:
        successes = sidecar_successes(sidecar_path(shard))
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        return BAD_SIDECAR
    return None if successes == count else COUNT_MISMATCH
