"""Quality recompute over 1,000,000 judgments (k=3) and the dashboard API's latency.

.venv/bin/python bench/quality_bench.py --judgments 1000000
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import REPO, bench_env, recreate_database, write_pairs_file

ANNOTATORS = 300
PORT = 8124

SYNTHETIC_JUDGMENTS = """
WITH slots AS (
    SELECT c.id AS comparison_id, r.n AS slot,
           (SELECT array_agg(id ORDER BY id) FROM auth_user WHERE username LIKE 'q%%') AS users
    FROM annotation_comparison c CROSS JOIN generate_series(0, %(votes)s - 1) AS r(n)
    WHERE c.project_id = %(project)s
), leased AS (
    INSERT INTO annotation_assignment
        (project_id, comparison_id, annotator_id, status, swapped, created_at, expires_at,
         closed_at, skip_reason)
    SELECT %(project)s, comparison_id,
           users[1 + ((comparison_id + slot * 100) %% %(annotators)s)],
           'submitted', random() < 0.5,
           now() - (random() * interval '56 days'), now(), now(), ''
    FROM slots
    RETURNING id, comparison_id, annotator_id, swapped, created_at
)
INSERT INTO annotation_judgment
    (assignment_id, project_id, comparison_id, annotator_id, choice, strength, rationale,
     time_taken_ms, swapped, created_at)
SELECT id, %(project)s, comparison_id, annotator_id,
       CASE WHEN random() < 0.2 THEN (ARRAY['A','B','tie','both_bad'])[1 + floor(random()*4)]
            WHEN comparison_id %% 2 = 0 THEN 'A' ELSE 'B' END,
       1 + floor(random() * 4)::int, '', 2000 + floor(random() * 20000)::int, swapped, created_at
FROM leased
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--database", default="preflab_bench_quality")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    comparisons = args.judgments // 3

    recreate_database(args.database)
    env = bench_env(args.database)
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from accounts.services import issue_token
    from annotation.importing import ImportOptions, import_comparisons
    from annotation.models import Comparison, ProjectMembership
    from annotation.quality import recompute_quality
    from annotation.services import create_project

    print(f"setting up {comparisons:,} comparisons × 3 judgments …", flush=True)
    project = create_project(name="quality bench")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_pairs_file(Path(tmp) / "pairs.jsonl", comparisons)
        with path.open("rb") as stream:
            import_comparisons(project=project, stream=stream, options=ImportOptions())
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"q{i:04d}") for i in range(ANNOTATORS)]
    )
    admin = user_model.objects.create_user("qadmin", password="x")  # noqa: S106
    ProjectMembership.objects.bulk_create(
        [ProjectMembership(project=project, user=u, role="annotator") for u in users]
        + [ProjectMembership(project=project, user=admin, role="project_admin")]
    )
    token = issue_token(user=admin, name="bench").key
    with connection.cursor() as cursor:
        cursor.execute(
            SYNTHETIC_JUDGMENTS,
            {"project": project.id, "annotators": ANNOTATORS, "votes": 3},
        )
        print(f"  {cursor.rowcount:,} judgments", flush=True)
    Comparison.objects.filter(project=project).update(judgment_count=3)

    timings = []
    for _ in range(3):
        started = time.perf_counter()
        snapshot = recompute_quality(project_id=project.id)
        timings.append(time.perf_counter() - started)
    summary = snapshot.payload["summary"]
    print(
        f"recompute over {snapshot.judgment_count:,} judgments: "
        f"{min(timings):.1f} s best, {statistics.median(timings):.1f} s median of 3"
    )
    print(f"  alpha nominal {summary['alpha_nominal']}, ordinal {summary['alpha_ordinal']}")

    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "preflab.wsgi:application",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", PORT), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{PORT}/api/projects/{project.id}/quality/"
        request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
        latencies, size = [], 0
        for i in range(args.requests + 10):
            started = time.perf_counter()
            with urllib.request.urlopen(request) as response:  # noqa: S310 - loopback only
                size = len(response.read())
            if i >= 10:  # warm
                latencies.append((time.perf_counter() - started) * 1000)
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, round(q / 100 * (len(latencies) - 1)))]  # noqa: E731
    print(
        f"dashboard API ({size / 1024:.0f} KiB): p50 {p(50):.1f} ms, p95 {p(95):.1f} ms, "
        f"p99 {p(99):.1f} ms over {len(latencies)} warm requests"
    )


if __name__ == "__main__":
    main()
