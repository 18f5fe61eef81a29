"""Parquet in and out of Spark DataFrames for any URL the pipeline takes.

Local paths and HDFS go through Spark's own reader and writer. An object store (``s3://``,
``gs://``, ...) would need Hadoop's connector jars (hadoop-aws for ``s3a://``) on every JVM,
which pyspark's wheel lacks; so there the files go through pyarrow and fsspec in the Python
workers instead: one task per input file streams its record batches into the DataFrame
(``mapInArrow``), and each partition of an output streams into ``part-NNNNN.parquet``, written
whole or not at all (:func:`vlcurate.pipeline.storage.parquet_writer`). Only file names and
row counts pass through the driver.
"""

from functools import partial
from itertools import chain

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.schemas.spark import to_spark


def through_arrow(url: str) -> bool:
    """Whether Spark's JVM cannot open ``url`` itself: an object store's URL."""
    scheme = url.split("://", 1)[0] if "://" in url else "file"
    return scheme in storage.OBJECT_STORES


def read_parquet(spark, files: list[str], schema: pa.Schema):
    """A DataFrame of ``files`` (parquet) with ``schema`` (Arrow; missing columns read null)."""
    spark_schema = to_spark(schema)
    if not files:
        return spark.createDataFrame([], spark_schema)
    if not any(map(through_arrow, files)):
        return spark.read.schema(spark_schema).parquet(*files)
    names = spark.sparkContext.parallelize([(f,) for f in files], len(files))
    paths = spark.createDataFrame(names, "path string")  # one file per partition
    return paths.mapInArrow(partial(_read_files, schema=schema), spark_schema)


def _read_files(batches, schema: pa.Schema):
    for batch in batches:
        for url in batch.column(0).to_pylist():
            with fsspec.open(url, "rb") as f:
                parquet = pq.ParquetFile(f)
                names = set(parquet.schema_arrow.names)
                for part in parquet.iter_batches(columns=[n for n in schema.names if n in names]):
                    yield _conform(part, schema)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    columns = [
        batch.column(field.name).cast(field.type)
        if field.name in batch.schema.names
        else pa.nulls(batch.num_rows, field.type)
        for field in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def write_parquet(frame, url: str) -> None:
    """Replace the folder ``url`` with ``frame``'s rows: ``part-NNNNN.parquet``, one a partition
    (always at least ``part-00000``, so an empty result is still a readable folder)."""
    if not through_arrow(url):
        frame.write.mode("overwrite").parquet(url)
        return
    from pyspark.sql.pandas.types import to_arrow_schema

    storage.remove_tree(url)
    schema = to_arrow_schema(frame.schema)
    frame.mapInArrow(partial(_write_part, url=url, schema=schema), "rows long").collect()


def _write_part(batches, url: str, schema: pa.Schema):
    from pyspark import TaskContext

    index = TaskContext.get().partitionId()
    target = storage.join(url, f"part-{index:05d}.parquet")
    first = next(batches, None)
    if first is None and index > 0:
        yield pa.RecordBatch.from_pydict({"rows": [0]})
        return
    rows = 0
    with storage.parquet_writer(target, schema) as writer:
        for batch in chain([] if first is None else [first], batches):
            writer.write_batch(batch.cast(schema))
            rows += batch.num_rows
    yield pa.RecordBatch.from_pydict({"rows": [rows]})
