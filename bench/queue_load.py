"""HTTP load benchmark of the annotation queue: simulated annotators (next → submit) against
gunicorn (2 workers) on PostgreSQL.

Two runs per size N:
  capacity  closed loop, 50 annotators, no think time
  latency   open loop, 500 annotators thinking ~5 s between items (~100 annotations/s)

Prints annotations/s, p50/p95/p99 latency of next and submit, errors, server and PostgreSQL
CPU-seconds per annotation (from /proc), queries per request, and checks the invariants
(never more than k per comparison, nobody twice, no accepted judgment lost) afterwards.

    .venv/bin/python bench/queue_load.py --n 10000 --n 1000000 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    REPO,
    bench_env,
    cpu_seconds,
    pids_named,
    recreate_database,
    start_server,
    write_pairs_file,
)

HOST, PORT = "127.0.0.1", 8123


@dataclass
class Stats:
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    accepted: list[int] = field(default_factory=list)
    empty: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def request(
    method: str, path: str, token: str, body: dict | None = None
) -> tuple[int, dict, int]:
    """One HTTP/1.1 request on a fresh loopback connection: (status, json body, queries)."""
    payload = json.dumps(body or {}).encode()
    reader, writer = await asyncio.open_connection(HOST, PORT)
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, data = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    queries = int(headers.get("x-query-count", "0"))
    return status, (json.loads(data) if data else {}), queries


async def annotator(
    project_id: int, token: str, stats: Stats, stop: float, think: float, rng: random.Random
) -> None:
    base = f"/api/projects/{project_id}"
    if think:
        await asyncio.sleep(rng.uniform(0, think * 2))
    while time.monotonic() < stop:
        try:
            started = time.perf_counter()
            status, body, queries = await request("POST", f"{base}/queue/next/", token)
            stats.next_ms.append((time.perf_counter() - started) * 1000)
            stats.queries.append(queries)
            if status != 200:
                stats.error(f"next {status}")
                continue
            item = body["item"]
            if item is None:
                stats.empty += 1
                return
            if think:
                await asyncio.sleep(rng.expovariate(1 / think))
            choice = rng.choice(["left", "right"])
            started = time.perf_counter()
            status, body, queries = await request(
                "POST",
                f"{base}/assignments/{item['assignment_id']}/submit/",
                token,
                {"choice": choice, "strength": rng.randint(1, 4), "time_taken_ms": 1000},
            )
            stats.submit_ms.append((time.perf_counter() - started) * 1000)
            stats.queries.append(queries)
            if status == 201:
                stats.accepted.append(body["id"])
            else:
                stats.error(f"submit {status}")
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            stats.error(type(exc).__name__)
            await asyncio.sleep(0.05)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def setup(database: str, n: int, annotators: int) -> tuple[int, list[str]]:
    """Fresh database with N comparisons (k=3) and annotators with API tokens."""
    recreate_database(database)
    script = f"""
import json
from pathlib import Path
from django.contrib.auth import get_user_model
from accounts.services import issue_token
from annotation.importing import ImportOptions, import_comparisons
from annotation.models import ProjectMembership
from annotation.services import create_project
project = create_project(name="load", lease_ttl_seconds=600)
with open({str(PAIRS)!r}, "rb") as stream:
    import_comparisons(project=project, stream=stream, options=ImportOptions())
User = get_user_model()
users = User.objects.bulk_create([User(username=f"sim{{i}}") for i in range({annotators})])
ProjectMembership.objects.bulk_create(
    [ProjectMembership(project=project, user=u, role="annotator") for u in users])
tokens = [issue_token(user=u, name="load").key for u in users]
print("SETUP", json.dumps({{"project": project.id, "tokens": tokens}}))
"""
    write_pairs_file(PAIRS, n)
    data = django_shell(database, script, "SETUP")
    return data["project"], data["tokens"]


def django_shell(database: str, script: str, marker: str) -> dict:
    """Run a script in ``manage.py shell`` on the bench database; parse what it printed
    as JSON after ``marker``."""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
        cwd=REPO,
        env=bench_env(database),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out.split(marker, 1)[1]))


def start_gunicorn(database: str) -> subprocess.Popen[bytes]:
    env = bench_env(database) | {"PREFLAB_QUERY_COUNT_HEADER": "1"}
    return start_server(env, HOST, PORT, workers=2)


def check_invariants(database: str, accepted: list[int]) -> dict[str, int]:
    script = """
import json
from django.db.models import Count, F
from annotation.models import Comparison, Judgment
over = Comparison.objects.filter(judgment_count__gt=F("target_votes")).count()
mismatch = Comparison.objects.annotate(n=Count("judgments")).exclude(n=F("judgment_count")).count()
twice = (Judgment.objects.values("comparison", "annotator").annotate(n=Count("id"))
         .filter(n__gt=1).count())
ids = list(Judgment.objects.values_list("id", flat=True))
print("INV", json.dumps({"over_k": over, "counter_mismatch": mismatch, "twice": twice,
                         "ids": ids}))
"""
    data = django_shell(database, script, "INV")
    stored = set(data.pop("ids"))
    data["accepted_but_lost"] = len(set(accepted) - stored)
    data["stored_but_not_acknowledged"] = len(stored - set(accepted))
    return data


def run(mode: str, n: int, database: str, duration: float) -> None:
    users = 50 if mode == "capacity" else 500
    think = 0.0 if mode == "capacity" else 5.0
    project_id, tokens = setup(database, n, users)
    server = start_gunicorn(database)
    try:
        time.sleep(1)
        # the postmaster too: backends that exit hand their CPU time to it (cutime)
        watched = pids_named("gunicorn") + pids_named("postgres")
        cpu_before = {pid: _cpu(pid) for pid in watched}
        stats = Stats()
        rng = random.Random(1)
        started = time.monotonic()
        stop = started + duration

        async def main() -> None:
            await asyncio.gather(
                *[
                    annotator(project_id, t, stats, stop, think, random.Random(rng.random()))
                    for t in tokens
                ]
            )

        asyncio.run(main())
        wall = time.monotonic() - started
        # processes started meanwhile (backends of new connections) count from zero
        watched = sorted(set(watched) | set(pids_named("gunicorn") + pids_named("postgres")))
        server_cpu = sum(_cpu(p) - cpu_before.get(p, 0.0) for p in watched if "gunicorn" in _cmd(p))
        pg_cpu = sum(_cpu(p) - cpu_before.get(p, 0.0) for p in watched if "postgres" in _cmd(p))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    done = len(stats.accepted)
    inv = check_invariants(database, stats.accepted)
    print(f"\n[{mode}] N={n:,} annotators={users} duration={wall:.0f}s")
    print(
        f"  annotations/s {done / wall:8.1f}   ({done} accepted, queue empty for "
        f"{stats.empty}, errors {stats.errors or 0})"
    )
    for name, values in (("next", stats.next_ms), ("submit", stats.submit_ms)):
        print(
            f"  {name:<6} p50 {pct(values, 50):6.1f} ms  p95 {pct(values, 95):6.1f} ms  "
            f"p99 {pct(values, 99):6.1f} ms  (n={len(values)})"
        )
    per = 1000 / max(done, 1)
    print(
        f"  CPU per annotation: server {server_cpu * per:5.1f} ms, "
        f"PostgreSQL {pg_cpu * per:5.1f} ms"
    )
    print(
        f"  queries per request: mean {statistics.fmean(stats.queries or [0]):.1f}, "
        f"max {max(stats.queries or [0])}"
    )
    print(f"  invariants: {inv}")


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


PAIRS = Path(tempfile.gettempdir()) / "preflab-bench-pairs.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, action="append", help="comparisons (repeatable)")
    parser.add_argument("--mode", choices=["capacity", "latency"], action="append")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--database", default="preflab_bench_queue")
    args = parser.parse_args()
    for n in args.n or [10_000]:
        for mode in args.mode or ["capacity", "latency"]:
            run(mode, n, args.database, args.duration)
    os.unlink(PAIRS)


if __name__ == "__main__":
    main()
