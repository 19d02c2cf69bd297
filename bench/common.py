"""Shared helpers of the benchmarks: a throw-away PostgreSQL database, synthetic files, /proc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")


def bench_env(database: str) -> dict[str, str]:
    """Environment for Django processes of a benchmark on its own database."""
    env = dict(os.environ)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    env.update(
        {
            # production settings (debug off), plain HTTP on loopback
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-" + "k3y!" * 16,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": f"{base}/{database}",
            "DJANGO_SETTINGS_MODULE": "preflab.settings",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def recreate_database(database: str) -> None:
    """Drop and create ``database``, then migrate it."""
    for sql in (
        f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
        f'CREATE DATABASE "{database}"',
    ):
        subprocess.run(["psql", PG_ADMIN_URL, "-qc", sql], check=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=REPO,
        env=bench_env(database),
        check=True,
    )


def write_pairs_file(path: Path, n: int) -> Path:
    """``n`` explicit-pair records (shape 2), one comparison each, written line by line."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            out.write(
                json.dumps(
                    {
                        "id": f"q{i}",
                        "prompt": f"Question number {i}: how should I phrase this politely?",
                        "response_a": f"Polite answer {i}: please consider the following.",
                        "response_b": f"Blunt answer {i}: just say it.",
                    }
                )
                + "\n"
            )
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / ticks


def pids_named(fragment: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if fragment in cmdline:
                pids.append(int(entry.name))
    return pids


def start_server(
    env: dict[str, str], host: str, port: int, *, workers: int = 2
) -> subprocess.Popen[bytes]:
    """gunicorn serving Preflab with ``env``; returns once the port accepts connections."""
    import socket
    import time

    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "preflab.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--backlog",
            "2048",
        ],
        cwd=REPO,
        env=env,
    )
    for _ in range(100):
        try:
            socket.create_connection((host, port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("gunicorn did not start")


def run_parallel(commands: list[tuple[str, list[str]]], *, jobs: int, logs: Path) -> list[str]:
    """Run each named command as a child process, ``jobs`` at a time, its output in
    ``logs/log-NAME.txt``; prints each one's exit as it ends. Returns the names that failed."""
    import time

    pending = list(commands)
    running: list[tuple[subprocess.Popen[bytes], str]] = []
    failed: list[str] = []
    started = time.perf_counter()
    while pending or running:
        while pending and len(running) < jobs:
            name, command = pending.pop(0)
            with (logs / f"log-{name}.txt").open("wb") as log:
                proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
            running.append((proc, name))
        time.sleep(1)
        for proc, name in list(running):
            if proc.poll() is not None:
                running.remove((proc, name))
                elapsed = time.perf_counter() - started
                print(f"[{elapsed:5.0f} s] {name}: exit {proc.returncode}", flush=True)
                if proc.returncode:
                    failed.append(name)
    return failed
