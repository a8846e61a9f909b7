"""Export test fixtures: a real S3-compatible server (moto's server mode) in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gati.exports.destinations import S3Options
from tests.exports.s3util import MOTO_KEY, MOTO_REGION, MOTO_SECRET, free_port, s3_client


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m moto.server`` on 127.0.0.1, a separate process; yields its endpoint URL."""
    port = free_port()
    log_path: Path = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": MOTO_KEY, "AWS_SECRET_ACCESS_KEY": MOTO_SECRET}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{endpoint}/moto-api/data.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("moto server did not answer within 60 s")
            time.sleep(0.1)  # polling a starting process, with a deadline
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def s3_bucket(moto_server: str) -> S3Options:
    """A fresh bucket on the moto server; returns destination options pointing at it."""
    bucket = f"gati-test-{uuid.uuid4().hex[:12]}"
    s3_client(moto_server).create_bucket(Bucket=bucket)
    return S3Options(
        bucket=bucket,
        prefix="analytics",
        region=MOTO_REGION,
        endpoint_url=moto_server,
        path_style=True,
        access_key_id=MOTO_KEY,
        secret_access_key=MOTO_SECRET,
    )
