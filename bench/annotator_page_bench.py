"""The per-annotator page and undo, in process on PostgreSQL.

Builds a project of ``--judgments`` synthetic judgments (k=3, 300 annotators, eight weeks, as
bench/quality_bench.py does), then prints:
- the page's build time (``annotator_page``) for one annotator, and its query count;
- submit → undo → resubmit cycles of a fresh annotator on fresh comparisons: the median and
  p95 of each step, and the queries of each.

    .venv/bin/python bench/annotator_page_bench.py --judgments 300000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_env, recreate_database, write_pairs_file
from bench.quality_bench import ANNOTATORS, SYNTHETIC_JUDGMENTS


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--judgments", type=int, default=300_000)
    parser.add_argument("--database", default="preflab_bench_annotator_page")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=100)
    args = parser.parse_args()
    comparisons = args.judgments // 3

    recreate_database(args.database)
    os.environ.update(bench_env(args.database))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotation import queue
    from annotation.annotator_selectors import annotator_page
    from annotation.importing import ImportOptions, import_comparisons
    from annotation.models import Comparison, ProjectMembership
    from annotation.services import create_project
    from annotation.undo import undo_judgment

    print(f"setting up {comparisons:,} comparisons × 3 judgments …", flush=True)
    project = create_project(name="annotator page bench")
    extra = 2 * args.cycles  # open comparisons for the undo cycles
    with tempfile.TemporaryDirectory() as tmp:
        path = write_pairs_file(Path(tmp) / "pairs.jsonl", comparisons + extra)
        with path.open("rb") as stream:
            import_comparisons(project=project, stream=stream, options=ImportOptions())
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"q{i:04d}") for i in range(ANNOTATORS)]
    )
    ProjectMembership.objects.bulk_create(
        [ProjectMembership(project=project, user=u, role="annotator") for u in users]
    )
    open_ids = list(
        Comparison.objects.filter(project=project).order_by("-id").values_list("id", flat=True)
    )[:extra]
    with connection.cursor() as cursor:
        cursor.execute(
            SYNTHETIC_JUDGMENTS.replace(
                "WHERE c.project_id = %(project)s",
                "WHERE c.project_id = %(project)s AND NOT c.id = ANY(%(open)s)",
            ),
            {"project": project.id, "annotators": ANNOTATORS, "votes": 3, "open": open_ids},
        )
        print(f"  {cursor.rowcount:,} judgments", flush=True)
    Comparison.objects.filter(project=project).exclude(id__in=open_ids).update(judgment_count=3)

    subject = users[0]
    annotator_page(project_id=project.id, user_id=subject.id)  # warm: scipy's import
    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            page = annotator_page(project_id=project.id, user_id=subject.id)
        timings.append(time.perf_counter() - started)
    print(
        f"annotator page for one of {ANNOTATORS} annotators "
        f"({page.throughput['judgments_total']:,} own judgments, "
        f"{len(page.agreement_weeks)} weeks): median {statistics.median(timings) * 1000:.0f} ms, "
        f"p95 {percentile(timings, 0.95) * 1000:.0f} ms, {len(queries)} queries"
    )

    fresh = user_model.objects.create_user("undoer")
    ProjectMembership.objects.create(project=project, user=fresh, role="annotator")
    steps: dict[str, list[float]] = {"submit": [], "undo": [], "resubmit": []}
    counts: dict[str, int] = {}
    first = queue.JudgmentInput(choice="left", strength=3)
    second = queue.JudgmentInput(choice="right", strength=1)

    def timed(step: str, call: Callable[[], object]) -> None:
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            call()
        steps[step].append(time.perf_counter() - started)
        counts[step] = len(queries)

    for _ in range(args.cycles):
        lease = queue.lease_next(project_id=project.id, user=fresh)
        assert lease is not None
        lease_id = lease.id
        timed(
            "submit",
            partial(queue.submit_judgment, project_id=project.id, assignment_id=lease_id,
                    user=fresh, data=first),
        )  # fmt: skip
        timed(
            "undo",
            partial(undo_judgment, project_id=project.id, assignment_id=lease_id, user=fresh),
        )
        timed(
            "resubmit",
            partial(queue.submit_judgment, project_id=project.id, assignment_id=lease_id,
                    user=fresh, data=second),
        )  # fmt: skip
    for step, values in steps.items():
        print(
            f"{step:>8}: median {statistics.median(values) * 1000:.1f} ms, "
            f"p95 {percentile(values, 0.95) * 1000:.1f} ms, {counts[step]} queries "
            f"({len(values)} cycles)"
        )


if __name__ == "__main__":
    main()
