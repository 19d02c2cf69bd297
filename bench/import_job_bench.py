"""Import jobs against a plain import on PostgreSQL: what storing the upload, reporting
progress between chunks and recording bad lines cost; and how fast every bad line downloads.

.venv/bin/python bench/import_job_bench.py --n 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_env, recreate_database, write_pairs_file


def with_bad_lines(source: Path, target: Path, every: int) -> int:
    """A copy of ``source`` where every ``every``-th line is cut in half (invalid JSON)."""
    bad = 0
    with source.open("rb") as src, target.open("wb") as out:
        for number, line in enumerate(src, start=1):
            if number % every == 0:
                out.write(line[: len(line) // 2] + b"\n")
                bad += 1
            else:
                out.write(line)
    return bad


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--database", default="preflab_bench_import_jobs")
    args = parser.parse_args()

    recreate_database(args.database)
    tmp = tempfile.TemporaryDirectory()
    os.environ.update(bench_env(args.database))
    os.environ["ARTIFACT_ROOT"] = str(Path(tmp.name) / "artifacts")
    import django

    django.setup()
    from django.core.files import File

    from annotation.import_jobs import bad_line_exports, create_import_job, run_inline
    from annotation.importing import ImportOptions, import_comparisons
    from annotation.services import create_project

    path = write_pairs_file(Path(tmp.name) / "pairs.jsonl", args.n)
    size_mb = path.stat().st_size / 1e6
    print(f"import jobs: {args.n:,} comparisons, a {size_mb:.0f} MB JSONL file")

    started = time.perf_counter()
    with path.open("rb") as stream:
        import_comparisons(
            project=create_project(name="plain"), stream=stream, options=ImportOptions()
        )
    plain = time.perf_counter() - started
    print(f"  plain import_comparisons: {plain:.1f} s ({args.n / plain:,.0f} comparisons/s)")

    started = time.perf_counter()
    with path.open("rb") as stream:
        job = create_import_job(
            project=create_project(name="job"),
            user=None,
            upload=File(stream),
            original_name="pairs.jsonl",
            options=ImportOptions(),
        )
    stored = time.perf_counter() - started
    job = run_inline(job)
    total = time.perf_counter() - started
    assert job.status == "succeeded", job.error
    print(
        f"  import job: {total:.1f} s ({args.n / total:,.0f} comparisons/s), of which "
        f"{stored:.2f} s storing the upload; {total / plain - 1:+.0%} against plain"
    )

    flawed = Path(tmp.name) / "flawed.jsonl"
    bad = with_bad_lines(path, flawed, every=10)
    with flawed.open("rb") as stream:
        job = create_import_job(
            project=create_project(name="flawed"),
            user=None,
            upload=File(stream),
            original_name="flawed.jsonl",
            options=ImportOptions(skip_bad_lines=True),
        )
    started = time.perf_counter()
    job = run_inline(job)
    wall = time.perf_counter() - started
    assert job.bad_line_count == bad, (job.bad_line_count, bad)
    print(f"  import job, skip_bad_lines, {bad:,} bad lines: {wall:.1f} s")
    for kind in ("jsonl", "csv"):
        started = time.perf_counter()
        size = sum(len(piece) for piece in bad_line_exports(job, kind))
        wall = time.perf_counter() - started
        print(
            f"  download of the {bad:,} bad lines ({kind}, {size / 1e6:.1f} MB): {wall:.2f} s "
            f"({bad / wall:,.0f} lines/s)"
        )
    tmp.cleanup()


if __name__ == "__main__":
    main()
