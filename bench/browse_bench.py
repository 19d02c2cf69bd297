"""The data browser on a big project: p50 / p95 of every list endpoint and filter, first pages
and deep pages, through Django's test client signed in as a project admin.

Builds (in its own PostgreSQL database) a project with N comparisons (default 1,000,000) by
bulk SQL: N/4 prompts of 4 responses each, 4 comparisons per prompt, in 10 batches, 1 % gold;
judgments (1 to 3 distinct annotators of 20) on 40 % of the comparisons, with leases, the
comparisons' counters and the vote tallies (agreement, consensus) filled in as the triggers
would. Then times each endpoint + filter: the first page R times, and a walk of P pages
following next_cursor, and pages read from a cursor near the oldest rows.

.venv/bin/python bench/browse_bench.py --n 1000000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_env, recreate_database

ANNOTATORS = 20
BATCHES = 10
JUDGED_SHARE = 0.4
GOLD_EVERY = 100  # one comparison in a hundred is gold


def build(n: int) -> dict[str, Any]:
    """The project and its rows; returns ids the filters need."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from annotation.models import Batch, BatchSource
    from annotation.roles import Role
    from annotation.services import create_project, set_membership

    user_model = get_user_model()
    project = create_project(name="bench browse", overlap_k=3)
    admin = user_model.objects.create_user(username="bench-admin", password="x")  # noqa: S106
    set_membership(project=project, user=admin, role=Role.PROJECT_ADMIN)
    annotators = [
        user_model.objects.create_user(username=f"annotator{i:02d}", password="x")  # noqa: S106
        for i in range(ANNOTATORS)
    ]
    for user in annotators:
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
    batches = Batch.objects.bulk_create(
        Batch(project=project, name=f"batch {i}", source=BatchSource.IMPORT) for i in range(BATCHES)
    )
    prompts = n // 4
    per_batch = -(-prompts // BATCHES)
    p = project.id
    batch_ids = "ARRAY[" + ",".join(str(b.id) for b in batches) + "]"
    user_ids = "ARRAY[" + ",".join(str(u.id) for u in annotators) + "]"
    steps = [
        (
            "prompts",
            "INSERT INTO annotation_prompt (project_id, external_id, messages, metadata, "
            "created_at) SELECT %s, 'prompt-' || g, jsonb_build_array(jsonb_build_object("
            "'role', 'user', 'content', 'Question number ' || g || ': how would you explain "
            "the idea behind it to a colleague who has not met it before?')), '{}', "
            "now() - (%s - g) * interval '1 second' FROM generate_series(1, %s) g",
            [p, prompts, prompts],
        ),
        (
            "responses",
            "INSERT INTO annotation_response (prompt_id, content, content_hash, source, "
            "metadata, created_at) SELECT pr.id, 'Answer ' || r || ' to ' || pr.external_id || "
            "'. ' || repeat('It depends on the context, and here is why. ', 6), "
            "pr.id * 4 + r, 'imported', '{}', pr.created_at FROM annotation_prompt pr, "
            "generate_series(0, 3) r WHERE pr.project_id = %s ORDER BY pr.id, r",
            [p],
        ),
        (
            "comparisons",
            "INSERT INTO annotation_comparison (project_id, batch_id, prompt_id, response_a_id, "  # noqa: S608
            "response_b_id, gold_choice, is_gold, target_votes, judgment_count, lease_count, "
            "created_at) SELECT %s, (" + batch_ids + ")[1 + (x.k - 1) / %s], x.pid, x.a, x.b, "
            "CASE WHEN x.gold THEN 'A' ELSE '' END, x.gold, "
            "CASE WHEN x.gold THEN 32767 ELSE 3 END, 0, 0, x.created FROM ("
            "SELECT pr.id AS pid, dense_rank() OVER (ORDER BY pr.id) AS k, "
            "pr.created_at AS created, "
            "rs.ids[pair[1]] AS a, rs.ids[pair[2]] AS b, "
            "(pr.id * 4 + v.n) %% %s = 0 AS gold "
            "FROM annotation_prompt pr "
            "JOIN LATERAL (SELECT array_agg(r.id ORDER BY r.id) AS ids FROM annotation_response r "
            "WHERE r.prompt_id = pr.id) rs ON true, "
            "(VALUES (0, ARRAY[1, 2]), (1, ARRAY[3, 4]), (2, ARRAY[1, 3]), (3, ARRAY[2, 4])) "
            "v(n, pair) "
            "WHERE pr.project_id = %s ORDER BY pr.id, pair) x",
            [p, per_batch, GOLD_EVERY, p],
        ),
        (
            "vote plan",
            # votes per judged comparison: 3 for two in three, else 1 or 2; the choice leans to
            # A so that agreement spreads over every level
            "CREATE TEMP TABLE plan AS SELECT c.id AS cid, i, "
            "(" + user_ids + ")[1 + ((c.id + i * 7) %% %s)] AS uid, "
            "(ARRAY['A', 'A', 'A', 'B', 'B', 'tie', 'both_bad'])[1 + floor(random() * 7)::int] "
            "AS choice, 1 + floor(random() * 4)::int AS strength, "
            "1500 + floor(random() * 20000)::int AS ms, "
            "c.created_at + (i + 1) * interval '1 hour' AS at "
            "FROM annotation_comparison c, generate_series(0, 2) i "
            "WHERE c.project_id = %s AND (c.id * 7919) %% 1000 < %s "
            "AND i < CASE WHEN (c.id %% 3) < 2 THEN 3 ELSE 1 + c.id %% 2 END",
            [ANNOTATORS, p, round(JUDGED_SHARE * 1000)],
        ),
        (
            "leases",
            "INSERT INTO annotation_assignment (project_id, comparison_id, annotator_id, status, "
            "swapped, created_at, expires_at, closed_at, skip_reason) SELECT %s, cid, uid, "
            "'submitted', (cid + i) %% 2 = 0, at - interval '1 minute', "
            "at + interval '9 minutes', at, '' FROM plan ORDER BY at, cid, i",
            [p],
        ),
        ("judgment trigger off", "ALTER TABLE annotation_judgment DISABLE TRIGGER USER", []),
        (
            "judgments",
            "INSERT INTO annotation_judgment (assignment_id, project_id, comparison_id, "
            "annotator_id, choice, strength, rationale, time_taken_ms, swapped, created_at) "
            "SELECT a.id, %s, plan.cid, plan.uid, plan.choice, CASE WHEN plan.choice IN "
            "('A', 'B') THEN plan.strength END, '', plan.ms, a.swapped, plan.at "
            "FROM plan JOIN annotation_assignment a ON a.comparison_id = plan.cid "
            "AND a.annotator_id = plan.uid ORDER BY plan.at, plan.cid, plan.i",
            [p],
        ),
        ("judgment trigger on", "ALTER TABLE annotation_judgment ENABLE TRIGGER USER", []),
        (
            "vote tallies",
            "INSERT INTO annotation_comparisonvotes (comparison_id, project_id, n_a, n_b, "
            "n_tie, n_both_bad) SELECT comparison_id, %s, "
            "count(*) FILTER (WHERE choice = 'A'), count(*) FILTER (WHERE choice = 'B'), "
            "count(*) FILTER (WHERE choice = 'tie'), "
            "count(*) FILTER (WHERE choice = 'both_bad') "
            "FROM annotation_judgment WHERE project_id = %s GROUP BY comparison_id",
            [p, p],
        ),
        (
            "counters",
            "UPDATE annotation_comparison c SET judgment_count = v.votes "
            "FROM annotation_comparisonvotes v WHERE v.comparison_id = c.id "
            "AND v.project_id = %s",
            [p],
        ),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        for name, sql, params in steps:
            started = time.perf_counter()
            with transaction.atomic():
                cursor.execute(sql, params)
            print(f"  {name}: {cursor.rowcount:,} rows in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        print(f"  vacuum analyze: {time.perf_counter() - started:.1f} s")
    return describe(project, admin)


def describe(project: Any, admin: Any) -> dict[str, Any]:
    """The ids the filters need, read from a built project."""
    from annotation.models import Batch, Comparison, ProjectMembership

    batches = list(Batch.objects.filter(project=project).order_by("id"))
    annotators = list(
        ProjectMembership.objects.filter(project=project, role="annotator")
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    prompts = project.prompts.count()
    comparisons = Comparison.objects.filter(project=project)
    judged = comparisons.filter(judgment_count__gt=0).order_by("id")
    middle = judged.values_list("id", "prompt_id")[judged.count() // 2]
    return {
        "project": project,
        "admin": admin,
        "comparisons": comparisons.count(),
        "annotator": annotators[3],
        "batch": batches[4].id,
        "old_batch": batches[0].id,
        "prompt": middle[1],
        "comparison": middle[0],
        "external_id": f"prompt-{prompts // 2}",
        "oldest_in_old_batch": comparisons.filter(batch=batches[0])
        .order_by("id")
        .values_list("id", flat=True)[500],
        "oldest_gold": comparisons.filter(is_gold=True)
        .order_by("id")
        .values_list("id", flat=True)[50],
        "oldest": {
            "prompts": project.prompts.order_by("id").values_list("id", flat=True)[500],
            "comparisons": comparisons.order_by("id").values_list("id", flat=True)[500],
            "judgments": project.judgments.order_by("id").values_list("id", flat=True)[500],
        },
    }


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000, help="comparisons")
    parser.add_argument("--database", default="preflab_bench_browse")
    parser.add_argument("--repeat", type=int, default=15, help="first-page requests per case")
    parser.add_argument("--pages", type=int, default=40, help="pages walked by next_cursor")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument(
        "--reuse", action="store_true", help="time the project an earlier run built (no rebuild)"
    )
    args = parser.parse_args()

    if not args.reuse:
        recreate_database(args.database)
    os.environ.update(bench_env(args.database))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from annotation.browse_selectors import encode_cursor
    from annotation.models import Project

    if args.reuse:
        project = Project.objects.get(name="bench browse")
        world = describe(project, get_user_model().objects.get(username="bench-admin"))
        print(f"timing the project built earlier ({world['comparisons']:,} comparisons)")
    else:
        print(f"building a project of {args.n:,} comparisons", flush=True)
        started = time.perf_counter()
        world = build(args.n)
        print(f"  built in {time.perf_counter() - started:.0f} s")
    client = Client()
    client.force_login(world["admin"])
    base = f"/api/projects/{world['project'].id}/data/"

    def get(path: str, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        response = client.get(path, params)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (path, params, response.content[:300])
        return elapsed, response.json()

    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("prompts", "none", {}),
        ("prompts", "batch", {"batch": world["batch"]}),
        ("prompts", "external_id", {"external_id": world["external_id"]}),
        ("comparisons", "none", {}),
        ("comparisons", "batch", {"batch": world["batch"]}),
        ("comparisons", "annotator", {"annotator": world["annotator"]}),
        ("comparisons", "status=open", {"status": "open"}),
        ("comparisons", "status=complete", {"status": "complete"}),
        ("comparisons", "status=gold", {"status": "gold"}),
        ("comparisons", "gold=yes", {"gold": "yes"}),
        ("comparisons", "gold=no", {"gold": "no"}),
        ("comparisons", "agreement>=0.9", {"agreement_min": 0.9}),
        ("comparisons", "agreement 0.5-0.7", {"agreement_min": 0.5, "agreement_max": 0.7}),
        ("comparisons", "agreement<=0.34", {"agreement_max": 0.34}),
        ("comparisons", "prompt", {"prompt": world["prompt"]}),
        (
            "comparisons",
            "batch+annotator+agreement",
            {"batch": world["old_batch"], "annotator": world["annotator"], "agreement_min": 0.6},
        ),
        ("judgments", "none", {}),
        ("judgments", "annotator", {"annotator": world["annotator"]}),
        ("judgments", "batch", {"batch": world["old_batch"]}),
        ("judgments", "gold=yes", {"gold": "yes"}),
        ("judgments", "choice=tie", {"choice": "tie"}),
        ("judgments", "prompt", {"prompt": world["prompt"]}),
        ("judgments", "comparison", {"comparison": world["comparison"]}),
    ]
    print(
        f"\n{'endpoint':<12} {'filter':<27} {'first p50':>9} {'p95':>7} "
        f"{'walk p50':>9} {'p95':>7} {'old p50':>8} {'p95':>7}  pages rows"
    )
    worst = 0.0
    for kind, label, params in cases:
        path = base + kind + "/"
        params = {**params, "limit": args.limit}
        get(path, params)  # warm
        first = [get(path, params)[0] for _ in range(args.repeat)]
        walk: list[float] = []
        cursor: str | None = None
        rows = 0
        for _ in range(args.pages):
            elapsed, body = get(path, {**params, **({"cursor": cursor} if cursor else {})})
            walk.append(elapsed)
            rows += len(body["results"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        # judgments by batch or gold come by (comparison id, judgment id)
        if kind == "judgments" and "batch" in params:
            old_cursor = encode_cursor(kind, world["oldest_in_old_batch"], 2**62)
        elif kind == "judgments" and params.get("gold") == "yes":
            old_cursor = encode_cursor(kind, world["oldest_gold"], 2**62)
        else:
            old_cursor = encode_cursor(kind, world["oldest"][kind])
        old = [get(path, {**params, "cursor": old_cursor})[0] for _ in range(args.repeat)]
        f50, f95 = percentiles(first)
        w50, w95 = percentiles(walk)
        o50, o95 = percentiles(old)
        worst = max(worst, f95, w95, o95)
        print(
            f"{kind:<12} {label:<27} {f50:9.1f} {f95:7.1f} {w50:9.1f} {w95:7.1f} "
            f"{o50:8.1f} {o95:7.1f}  {len(walk):5d} {rows}",
            flush=True,
        )
    detail = base + f"comparisons/{world['comparison']}/"
    d50, d95 = percentiles([get(detail, {})[0] for _ in range(args.repeat)])
    print(f"{'comparison':<12} {'detail':<27} {d50:9.1f} {d95:7.1f}")
    print(f"\nworst list p95: {worst:.1f} ms (times in ms, page size {args.limit})")


if __name__ == "__main__":
    main()
