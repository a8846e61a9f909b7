"""Helpers shared by the export tests (S3 client on the moto server, free ports)."""

from __future__ import annotations

import socket
from typing import Any

import boto3

MOTO_REGION = "us-east-1"
MOTO_KEY = "testing-key"
MOTO_SECRET = "testing-secret"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=MOTO_REGION,
        aws_access_key_id=MOTO_KEY,
        aws_secret_access_key=MOTO_SECRET,
    )
