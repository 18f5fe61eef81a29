"""The export stage: a final output -> a release, metadata parquet anyone re-downloads with
img2dataset (LAION's columns)."""
