"""Exports of raw events (seed 003): JSON/CSV/Parquet files to a local folder or S3."""
