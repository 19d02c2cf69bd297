"""The project members page's read: every member with role, join time and activity
(judgment count, last judgment) in one query, over many members and judgments.

.venv/bin/python bench/members_bench.py --members 1000 --comparisons 100000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_env, recreate_database, write_pairs_file
from bench.quality_bench import SYNTHETIC_JUDGMENTS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--comparisons", type=int, default=100_000)
    parser.add_argument("--database", default="preflab_bench_members")
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    recreate_database(args.database)
    os.environ.update(bench_env(args.database))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.services import issue_token
    from annotation.importing import ImportOptions, import_comparisons
    from annotation.members import members_of
    from annotation.models import ProjectMembership
    from annotation.services import create_project

    project = create_project(name="members bench")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_pairs_file(Path(tmp) / "pairs.jsonl", args.comparisons)
        with path.open("rb") as stream:
            import_comparisons(project=project, stream=stream, options=ImportOptions())
    user_model = get_user_model()
    # the synthetic judgments are spread over the users named q…
    users = user_model.objects.bulk_create(
        [user_model(username=f"q{i:05d}") for i in range(args.members)]
    )
    admin = user_model.objects.create_user("madmin", password="x")  # noqa: S106
    ProjectMembership.objects.bulk_create(
        [ProjectMembership(project=project, user=u, role="annotator") for u in users]
        + [ProjectMembership(project=project, user=admin, role="project_admin")]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            SYNTHETIC_JUDGMENTS, {"project": project.id, "annotators": args.members, "votes": 3}
        )
        judgments = cursor.rowcount
        cursor.execute("ANALYZE")
    print(f"{args.members + 1:,} members, {judgments:,} judgments", flush=True)

    timings = []
    for _ in range(5):
        started = time.perf_counter()
        rows = list(members_of(project_id=project.id))
        timings.append((time.perf_counter() - started) * 1000)
    assert sum(r.judgment_count for r in rows) == judgments  # type: ignore[attr-defined]
    print(f"members_of: {statistics.median(timings):.0f} ms median of 5 ({len(rows):,} rows)")

    token = issue_token(user=admin, name="bench").key
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    url = f"/api/projects/{project.id}/members/"
    latencies = []
    for i in range(args.requests + 3):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200
        if i >= 3:
            latencies.append(elapsed)
    latencies.sort()
    size = len(response.content)
    print(
        f"GET members ({size / 1024:.0f} KiB): p50 {latencies[len(latencies) // 2]:.0f} ms, "
        f"max {latencies[-1]:.0f} ms over {len(latencies)} requests, "
        f"{len(queries.captured_queries)} queries per request"
    )


if __name__ == "__main__":
    main()
