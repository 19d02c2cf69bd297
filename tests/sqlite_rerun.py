"""Run tests again on the embedded SQLite database, in a ``pytest`` subprocess with
``DATABASE_URL`` unset, from a suite that runs on PostgreSQL: for tests whose point is a
SQLite behaviour (its variable limit) or that must hold on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

on_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the suite runs on SQLite already",
)


def run_on_sqlite(node_ids: list[str], var_dir: Path, *, extra: tuple[str, ...] = ()) -> str:
    """Run ``node_ids`` on SQLite; their output, after asserting that they passed."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PREFLAB_VAR_DIR"] = str(var_dir)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, *node_ids],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result.stdout
