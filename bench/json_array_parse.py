"""Parsing time of JSON-array import files from 1k to 1M elements (one explicit pair per
element, pretty-printed one element per line): ``iter_json_values`` decodes the array element
by element and tracks line numbers as it goes, so the time per element stays flat as the file
grows. Parsing only — no database — to show the parser's scaling by itself.

    python bench/json_array_parse.py [--max 1000000]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from annotation.import_records import iter_json_values


def array_file(n: int) -> bytes:
    element = {"id": "p0", "prompt": "Explain a p-value.", "response_a": "A", "response_b": "B"}
    lines = []
    for i in range(n):
        element["id"] = f"p{i}"
        lines.append(json.dumps(element))
    return ("[\n" + ",\n".join(lines) + "\n]\n").encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    print(f"{'elements':>10} {'MB':>8} {'seconds':>9} {'µs/element':>11}")
    n = 1000
    while n <= args.max:
        data = array_file(n)
        started = time.perf_counter()
        count = sum(1 for _ in iter_json_values(io.BytesIO(data)))
        elapsed = time.perf_counter() - started
        assert count == n
        print(f"{n:>10,} {len(data) / 1e6:>8.1f} {elapsed:>9.3f} {elapsed / n * 1e6:>11.2f}")
        n *= 10
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
