"""`gati project create|list`, `gati key create|list|revoke`, `gati migrate` on a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def gati(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gati.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_project_and_keys(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "GATI_DATA_DIR": str(tmp_path)}
    assert gati("migrate", env=env).returncode == 0
    out = gati("project", "create", "My Shop", "--json", env=env)
    assert out.returncode == 0, out.stderr
    project = json.loads(out.stdout)
    assert project["slug"] == "my-shop"
    assert project["public_key"].startswith("pk_") and project["secret_key"].startswith("sk_")
    again = gati("project", "create", "My Shop", env=env)
    assert again.returncode != 0 and "already exists" in again.stderr
    listed = json.loads(gati("project", "list", "--json", env=env).stdout)
    assert any(p["slug"] == "my-shop" for p in listed)
    key = json.loads(gati("key", "create", "my-shop", "--name", "ci", "--json", env=env).stdout)
    keys = json.loads(gati("key", "list", str(project["id"]), "--json", env=env).stdout)
    assert {k["name"] for k in keys} == {"default", "ci"}
    assert gati("key", "revoke", "my-shop", str(key["id"]), env=env).returncode == 0
    keys = json.loads(gati("key", "list", "my-shop", "--json", env=env).stdout)
    assert [k["revoked"] for k in keys if k["name"] == "ci"] == [True]
    missing = gati("key", "list", "nope", env=env)
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_serve_with_no_settings_creates_its_data_folder(tmp_path: Path) -> None:
    """`gati serve` on a fresh machine: embedded SQLite in a GATI_DATA_DIR that does not exist."""
    import httpx

    from tests.conftest import free_port, wait_until

    data_dir = tmp_path / "new" / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GATI_SKIP_MIGRATIONS")}
    env.update(GATI_DATA_DIR=str(data_dir), RUN_JOBS_IN_PROCESS="false", LOG_LEVEL="WARNING")
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gati.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=60)
        event = {"event_type": "agent_start", "run_id": "r1", "agent_name": "a"}
        r = httpx.post(url + "/api/events", json={"events": [event]}, timeout=10)
        assert r.status_code == 200 and r.json()["count"] == 1
        assert (data_dir / "gati.db").is_file()
    finally:
        process.terminate()
        process.wait(timeout=20)
