"""Settings come from the environment; production settings pass ``check --deploy``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_KEY = "p7$Wq!x2vB9#mZ4rT8&kL1@nH6^yF3*cJ5(dG0)sA-eU+iO=pQ_wE%rTzXcVbNm"


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_check_deploy(tmp_path: Path) -> None:
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": PRODUCTION_KEY,
            "DJANGO_ALLOWED_HOSTS": "preflab.example.org",
            "PREFLAB_VAR_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_off_without_secret_key_refuses_to_start(tmp_path: Path) -> None:
    result = run_manage("check", env={"DJANGO_DEBUG": "0", "PREFLAB_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_embedded_default_is_sqlite_and_filesystem_broker(tmp_path: Path) -> None:
    script = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);print(s.CELERY_BROKER_URL);"
        "print(s.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in']);print(s.ARTIFACT_ROOT)"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "ARTIFACT_ROOT", "REDIS_URL"}
        and not k.startswith("PYTEST")
    }
    env.update({"DJANGO_DEBUG": "1", "PREFLAB_VAR_DIR": str(tmp_path)})
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out == [
        "django.db.backends.sqlite3",
        "filesystem://",
        str(tmp_path / "broker" / "queue"),
        str(tmp_path / "artifacts"),
    ]
