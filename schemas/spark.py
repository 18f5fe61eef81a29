"""Spark StructTypes derived from the Arrow schemas, so that no schema is written twice.

pyspark is imported lazily: ``pipeline`` imports ``schemas`` and must never need Spark.
"""

import pyarrow as pa


def to_spark(arrow: pa.Schema | pa.DataType):
    """Return the Spark type for an Arrow schema or type (a StructType for a schema)."""
    from pyspark.sql import types as T

    def convert(t: pa.DataType):
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return T.StringType()
        if pa.types.is_int64(t):
            return T.LongType()
        if pa.types.is_int32(t):
            return T.IntegerType()
        if pa.types.is_int16(t):
            return T.ShortType()
        if pa.types.is_int8(t):
            return T.ByteType()
        if pa.types.is_float64(t):
            return T.DoubleType()
        if pa.types.is_float32(t) or pa.types.is_float16(t):
            return T.FloatType()
        if pa.types.is_boolean(t):
            return T.BooleanType()
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return T.BinaryType()
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return T.ArrayType(convert(t.value_type), t.value_field.nullable)
        if pa.types.is_struct(t):
            return T.StructType([field(t.field(i)) for i in range(t.num_fields)])
        raise TypeError(f"no Spark type for Arrow type {t}")

    def field(f: pa.Field):
        return T.StructField(f.name, convert(f.type), f.nullable)

    if isinstance(arrow, pa.Schema):
        return T.StructType([field(f) for f in arrow])
    return convert(arrow)
