"""The production compose file is accepted by ``docker compose config``."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO


def test_compose_file_is_valid() -> None:
    docker = shutil.which("docker")
    probe = (
        subprocess.run([docker or "docker", "compose", "version"], capture_output=True, check=False)
        if docker
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("the docker compose client plugin is not installed here")
    env = dict(os.environ, DJANGO_SECRET_KEY="x" * 60)
    result = subprocess.run(
        [docker or "docker", "compose", "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_declares_every_service_and_the_gpu_reservation() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    for service in ("postgres:", "redis:", "web:", "worker:", "gpu-worker:", "beat:"):
        assert f"\n  {service}" in text, service
    assert "driver: nvidia" in text
    assert "-Q gpu" in text or "- gpu" in text
