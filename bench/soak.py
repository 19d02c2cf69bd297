"""Soak test: many simulated annotators for minutes against gunicorn on PostgreSQL, then the
invariants.

A fresh database (``recreate_database``), a project with overlap k=3 and N synthetic
comparisons (``import_comparisons``), M annotators (``prepare_annotators``) judging through
the real HTTP API (``annotation.simulation.simulate`` with keep-alive connections and think
time) against gunicorn with production settings (``bench_env``: DEBUG off, throttles and
lock-out on at their defaults). Afterwards it prints and checks:

* lost judgments: accepted submissions (201) without their row — must be 0
* duplicated (annotator, comparison) pairs — must be 0
* overlap violations: comparisons with more judgments than their target — must be 0
* counter mismatches: ``judgment_count`` ≠ the number of judgment rows — must be 0
* error rate (non-2xx answers and connection errors per request, 409/404 lease races
  separately) and p50/p95/p99 latency of ``queue/next`` and ``submit``.

The simulator's report has no latencies, so this script times each request by wrapping
``ApiClient.post`` in this process (the module itself is unchanged).

    .venv/bin/python bench/soak.py --annotators 200 --seconds 300
    .venv/bin/python bench/soak.py --annotators 50 --seconds 30 --comparisons 20000

Exit status 1 when an invariant is violated.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_env, recreate_database, start_server, write_pairs_file

HOST = "127.0.0.1"


@dataclass
class Timings:
    """Every request of the run: latency per endpoint kind, answers per status."""

    # (started, milliseconds) per endpoint kind; started is time.monotonic()
    ms: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {"next": [], "submit": []}
    )
    statuses: Counter[str] = field(default_factory=Counter)
    accepted_ids: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, started: float, status: str, judgment_id: int | None) -> None:
        millis = (time.monotonic() - started) * 1000
        with self.lock:
            self.ms.setdefault(kind, []).append((started, millis))
            self.statuses[f"{kind} {status}"] += 1
            if judgment_id is not None:
                self.accepted_ids.append(judgment_id)


def instrument(timings: Timings) -> None:
    """Time every ``ApiClient.post`` of the simulator (latency includes a reconnect when the
    server closed an idle keep-alive connection)."""
    from annotation import simulation

    original = simulation.ApiClient.post

    def timed(self: Any, path: str, body: dict[str, Any]) -> Any:
        kind = (
            "next"
            if path.endswith("/queue/next/")
            else "submit"
            if path.endswith("/submit/")
            else "other"
        )
        started = time.monotonic()
        try:
            reply = original(self, path, body)
        except simulation.TransportError:
            timings.record(kind, started, "connection", None)
            raise
        judgment_id = None
        if kind == "submit" and reply.status == 201 and isinstance(reply.data, dict):
            judgment_id = reply.data.get("id")
        timings.record(kind, started, str(reply.status), judgment_id)
        return reply

    simulation.ApiClient.post = timed  # type: ignore[method-assign]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def setup(comparisons: int, annotators: int, overlap: int) -> tuple[int, list[tuple[str, str]]]:
    from annotation.importing import ImportOptions, import_comparisons
    from annotation.services import create_project
    from annotation.simulation import prepare_annotators

    project = create_project(name="soak", overlap_k=overlap, lease_ttl_seconds=600)
    pairs = Path(tempfile.gettempdir()) / f"preflab-soak-{os.getpid()}.jsonl"
    try:
        write_pairs_file(pairs, comparisons)
        started = time.monotonic()
        with pairs.open("rb") as stream:
            report = import_comparisons(project=project, stream=stream, options=ImportOptions())
        print(
            f"imported {report.comparisons_created:,} comparisons in "
            f"{time.monotonic() - started:.1f}s"
        )
    finally:
        pairs.unlink(missing_ok=True)
    credentials = prepare_annotators(project=project, count=annotators, prefix="soak")
    return project.pk, credentials


def invariants(project_id: int, accepted_ids: list[int], submitted: int) -> dict[str, int]:
    from django.db.models import Count, F

    from annotation.models import Comparison, Judgment

    comparisons = Comparison.objects.filter(project_id=project_id)
    judgments = Judgment.objects.filter(project_id=project_id)
    stored = set(judgments.values_list("id", flat=True))
    return {
        "judgments_stored": len(stored),
        "accepted_by_api": len(accepted_ids),
        "accepted_by_simulator": submitted,
        "lost": len(set(accepted_ids) - stored),
        "stored_not_acknowledged": len(stored - set(accepted_ids)),
        "duplicated": judgments.values("comparison", "annotator")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "overlap_violations": comparisons.filter(judgment_count__gt=F("target_votes")).count(),
        "counter_mismatches": comparisons.annotate(n=Count("judgments"))
        .exclude(n=F("judgment_count"))
        .count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--comparisons", type=int, default=200_000)
    parser.add_argument("--overlap", type=int, default=3, help="k: judgments per comparison")
    parser.add_argument("--think-ms", type=int, default=2000, help="pause before each submit")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (2-4)")
    parser.add_argument("--port", type=int, default=8131)
    parser.add_argument("--database", default="preflab_bench_soak")
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=10.0,
        help="also report latencies without requests started in the first seconds",
    )
    args = parser.parse_args()

    env = bench_env(args.database)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connections

    from annotation.simulation import SimulationConfig, simulate

    recreate_database(args.database)
    project_id, credentials = setup(args.comparisons, args.annotators, args.overlap)
    connections.close_all()

    timings = Timings()
    instrument(timings)
    server = start_server(env, HOST, args.port, workers=args.workers)
    began = time.monotonic()
    try:
        report = simulate(
            base_url=f"http://{HOST}:{args.port}",
            project_id=project_id,
            credentials=credentials,
            config=SimulationConfig(
                annotators=args.annotators,
                seconds=args.seconds,
                keep_alive=True,
                think_ms=args.think_ms,
                prefix="soak",
                noise=0.1,
                http_timeout_s=60.0,
            ),
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    inv = invariants(project_id, timings.accepted_ids, report.total)
    requests = sum(timings.statuses.values())
    races = sum(n for key, n in timings.statuses.items() if key.endswith((" 409", " 404")))
    errors = sum(
        n
        for key, n in timings.statuses.items()
        if not key.split()[1].startswith("2") and not key.endswith((" 409", " 404"))
    )
    stopped = Counter(report.stopped.values())
    print(
        f"\nsoak: {args.annotators} annotators, {report.elapsed_s:.0f}s, gunicorn "
        f"{args.workers} workers, {args.comparisons:,} comparisons k={args.overlap}, "
        f"think {args.think_ms} ms"
    )
    print(f"  judgments {report.total:,} ({report.judgments_per_s:.1f}/s), requests {requests:,}")
    print(
        f"  error rate {errors / max(requests, 1):.4%} ({errors} errors), lease races "
        f"(409/404) {races}, answers {dict(sorted(timings.statuses.items()))}"
    )
    print(f"  annotators stopped: {dict(stopped)}")
    if report.annotator_errors:
        first = next(iter(report.annotator_errors.items()))
        print(f"  annotator errors: {len(report.annotator_errors)} (first: {first})")
    for label, since in (("all", 0.0), (f"after {args.warmup_s:.0f}s", args.warmup_s)):
        for kind in ("next", "submit"):
            values = [ms for t, ms in timings.ms.get(kind, []) if t - began >= since]
            print(
                f"  {label:>9} {kind:<6} p50 {pct(values, 50):7.1f} ms  "
                f"p95 {pct(values, 95):7.1f} ms  p99 {pct(values, 99):7.1f} ms  "
                f"max {max(values or [float('nan')]):7.1f} ms  (n={len(values)})"
            )
    print(f"  invariants: {json.dumps(inv)}")
    bad = {k: inv[k] for k in ("lost", "duplicated", "overlap_violations", "counter_mismatches")}
    if inv["accepted_by_api"] != inv["accepted_by_simulator"]:
        bad["simulator_vs_api"] = inv["accepted_by_api"] - inv["accepted_by_simulator"]
    violated = {k: v for k, v in bad.items() if v}
    print("  OK: all invariants hold" if not violated else f"  FAILED: {violated}")
    return 1 if violated else 0


if __name__ == "__main__":
    sys.exit(main())
