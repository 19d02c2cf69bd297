"""Export N judged comparisons to JSONL, then to Parquet: wall time and peak RSS of the
process doing the export (a fresh process each, so setup does not count).

    .venv/bin/python bench/export_bench.py --comparisons 1000000 --votes 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import REPO, bench_env, recreate_database

EXPORT = """
import json, resource, sys, time
import django
django.setup()
from django.contrib.auth import get_user_model
from annotation.export import create_export
from annotation.export_options import parse_export_options
from annotation.models import Project
project = Project.objects.get(name="export bench")
user = get_user_model().objects.get(username="exporter")
started = time.perf_counter()
export = create_export(project=project, options=parse_export_options(json.loads(sys.argv[1])),
                       user=user)
wall = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT", json.dumps({"wall": wall, "rss_mb": rss, "rows": export.train_rows
      + export.test_rows, "bytes": sum(f["bytes"] for f in export.files.values())}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--comparisons", type=int, default=1_000_000)
    parser.add_argument("--votes", type=int, default=3)
    parser.add_argument("--database", default="preflab_bench_export")
    parser.add_argument("--skip-setup", action="store_true", help="Reuse the last setup.")
    args = parser.parse_args()

    if not args.skip_setup:
        recreate_database(args.database)
    env = bench_env(args.database)
    env["ARTIFACT_ROOT"] = tempfile.mkdtemp(prefix="preflab-export-bench-")
    setup = f"""
import tempfile
from pathlib import Path
from django.contrib.auth import get_user_model
from django.db import connection
from annotation.importing import ImportOptions, import_comparisons
from annotation.models import Comparison
from annotation.services import create_project
from bench.common import write_pairs_file
from bench.quality_bench import ANNOTATORS, SYNTHETIC_JUDGMENTS
project = create_project(name="export bench")
with tempfile.TemporaryDirectory() as tmp:
    path = write_pairs_file(Path(tmp) / "pairs.jsonl", {args.comparisons})
    with path.open("rb") as stream:
        import_comparisons(project=project, stream=stream, options=ImportOptions())
User = get_user_model()
User.objects.bulk_create([User(username=f"q{{i:04d}}") for i in range(ANNOTATORS)])
User.objects.create_user("exporter")
with connection.cursor() as cursor:
    cursor.execute(SYNTHETIC_JUDGMENTS, {{"project": project.id, "annotators": ANNOTATORS,
                                         "votes": {args.votes}}})
    print("judgments", cursor.rowcount)
Comparison.objects.filter(project=project).update(judgment_count={args.votes})
"""
    if not args.skip_setup:
        print(f"setting up {args.comparisons:,} comparisons × {args.votes} judgments …", flush=True)
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", setup],
            cwd=REPO,
            env=env | {"PYTHONPATH": str(REPO)},
            check=True,
        )
        subprocess.run(["psql", env["DATABASE_URL"], "-qc", "VACUUM ANALYZE"], check=True)
    for formats in (["jsonl"], ["parquet"]):
        out = subprocess.run(
            [sys.executable, "-c", EXPORT, json.dumps({"formats": formats})],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out.split("RESULT", 1)[1])
        label = "JSONL" if formats == ["jsonl"] else "JSONL + Parquet"
        print(
            f"{label}: {result['rows']:,} rows, {result['bytes'] / 1e6:.0f} MB in "
            f"{result['wall']:.1f} s, peak RSS {result['rss_mb']:.0f} MB"
        )
    os.system(f"rm -rf {env['ARTIFACT_ROOT']}")  # noqa: S605 - our own temporary folder


if __name__ == "__main__":
    main()
