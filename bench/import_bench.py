"""Import N comparisons (JSONL, shape 2) into PostgreSQL: wall time, rows/s, peak RSS, and the
CPU seconds of this process and of its PostgreSQL backend (read from /proc when the server is
on this machine).

.venv/bin/python bench/import_bench.py --n 1000000
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_env, cpu_seconds, recreate_database, write_pairs_file


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--database", default="preflab_bench_import")
    args = parser.parse_args()

    recreate_database(args.database)
    os.environ.update(bench_env(args.database))
    import django

    django.setup()
    from django.db import connection

    from annotation.importing import ImportOptions, import_comparisons
    from annotation.services import create_project

    with tempfile.TemporaryDirectory() as tmp:
        path = write_pairs_file(Path(tmp) / "pairs.jsonl", args.n)
        size_mb = path.stat().st_size / 1e6
        project = create_project(name="bench import")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (backend,) = cursor.fetchone()
        backend_cpu = _cpu(backend)
        cpu = time.process_time()
        started = time.perf_counter()
        with path.open("rb") as stream:
            report = import_comparisons(project=project, stream=stream, options=ImportOptions())
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        backend_cpu = _cpu(backend) - backend_cpu
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"import: {args.n} comparisons from a {size_mb:.0f} MB JSONL file")
    print(f"  wall {wall:.1f} s, {args.n / wall:,.0f} comparisons/s, peak RSS {rss_mb:.0f} MB")
    server = "n/a (the server is not local)" if math.isnan(backend_cpu) else f"{backend_cpu:.1f} s"
    print(f"  CPU: Python {cpu:.1f} s, PostgreSQL backend {server}")
    print(
        f"  created: {report.prompts_created} prompts, {report.responses_created} responses, "
        f"{report.comparisons_created} comparisons"
    )


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:  # the server runs elsewhere
        return float("nan")


if __name__ == "__main__":
    main()
