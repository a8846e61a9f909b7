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
