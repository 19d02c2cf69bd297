"""Runs the end-to-end RLHF test (``tests/training/test_rlhf_loop.py``) many times in a row and
prints what each run recorded: the gold win rate of round 2's policy over the starting one
(the test needs > 0.6), the mean gold score of both, the KL from the start and the mean
response length in words, then the spread over the runs.

    python bench/rlhf_loop_repeat.py [--runs 10] [--vary-seed] [--first-seed 1]

Without ``--vary-seed`` every run uses the test's own annotator seed: the labels are keyed
by the pair, so on one machine the runs should agree (a spread here means something else in
the loop depends on timing). With ``--vary-seed`` run i uses seed first-seed + i: another
draw of the annotators' noise each time, a check that the loop holds for draws it was not
tuned on. Needs what the test needs (PostgreSQL and Redis, as ``make test`` finds them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEST = "tests/training/test_rlhf_loop.py"
FIELDS = ("win_rate", "gold_new", "gold_old", "kl_vs_start", "words_new")


def run_once(seed: int | None, report: Path) -> tuple[bool, dict[str, str], float]:
    env = dict(os.environ)
    if seed is not None:
        env["PREFLAB_LOOP_SEED"] = str(seed)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/preflab")
    env.setdefault("PREFLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    env.setdefault("CELERY_BROKER_URL", env["PREFLAB_TEST_REDIS_URL"])
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            TEST,
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    properties: dict[str, str] = {}
    if report.exists():
        for prop in ET.parse(report).getroot().iter("property"):  # noqa: S314 - our own file
            properties[prop.get("name", "")] = prop.get("value", "")
    if done.returncode != 0 and "win_rate" not in properties:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        properties["error"] = " | ".join(tail)
    return done.returncode == 0, properties, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--vary-seed", action="store_true", help="Seed first-seed + i per run.")
    parser.add_argument("--first-seed", type=int, default=1)
    args = parser.parse_args(argv)
    passed = 0
    rates: list[float] = []
    print(
        f"{'run':>3} {'seed':>5} {'result':>6} "
        + " ".join(f"{f:>11}" for f in FIELDS)
        + f" {'seconds':>8}  samples"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            seed = args.first_seed + i if args.vary_seed else None
            ok, props, elapsed = run_once(seed, Path(tmp) / f"run-{i}.xml")
            passed += ok
            if "win_rate" in props:
                rates.append(float(props["win_rate"]))
            values = " ".join(f"{props.get(f, '-'):>11}" for f in FIELDS)
            print(
                f"{i + 1:>3} {props.get('seed', '-'):>5} {'pass' if ok else 'FAIL':>6} {values}"
                f" {elapsed:>8.1f}  {props.get('samples', props.get('error', ''))[:160]}",
                flush=True,
            )
            for name in ("round_1", "round_2"):
                if name in props:
                    print(f"{'':>17}{name}: {props[name]}", flush=True)
    print(f"\npassed {passed}/{args.runs}")
    if rates:
        spread = statistics.pstdev(rates) if len(rates) > 1 else 0.0
        print(
            f"gold win rate: min {min(rates):.4f}  median {statistics.median(rates):.4f}  "
            f"max {max(rates):.4f}  std {spread:.4f}  (the test needs > 0.6)"
        )
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
