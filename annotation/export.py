"""Export agreement-gated preference datasets in TRL's format, as immutable snapshots.

Consensus is computed from the project's judgments (excluded annotators left out), rows are
streamed from a server-side cursor into JSONL (and Parquet / a ``datasets`` directory on
request), split into train and test by prompt, hashed, and recorded as a
:class:`DatasetExport`. Files are written to a temporary folder and renamed into place only
when complete.
"""

from __future__ import annotations

import hashlib
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from numpy.typing import NDArray

from annotation import agreement as ag
from annotation.export_options import ExportOptions, InvalidExportOptions
from annotation.models import (
    Batch,
    Comparison,
    DatasetExport,
    ExportStatus,
    Project,
)
from annotation.quality import load_judgments
from annotation.selectors import excluded_annotator_ids
from preflab.db_chunks import chunk_size, chunked

LABELS = ("A", "B", "tie", "both_bad")
ProgressFn = Callable[[float], None]


class EmptyExport(InvalidExportOptions):
    """No comparison is left after the filters (nothing is recorded)."""


@dataclass
class Consensus:
    """Dawid–Skene labels by comparison id (majority vote is computed row by row instead)."""

    comparison_id: NDArray[np.int64]  # sorted
    label: NDArray[np.int64]
    confidence: NDArray[np.float64]

    def lookup(self, comparison_id: int) -> tuple[int, float]:
        k = int(np.searchsorted(self.comparison_id, comparison_id))
        if k < len(self.comparison_id) and self.comparison_id[k] == comparison_id:
            return int(self.label[k]), float(self.confidence[k])
        return -1, 0.0


def export_root() -> Path:
    return Path(settings.ARTIFACT_ROOT) / "exports"


def check_batches(project: Project, options: ExportOptions) -> None:
    if not options.batches:
        return
    known: set[int] = set()
    for chunk in chunked(options.batches):
        known.update(
            Batch.objects.filter(project=project, id__in=chunk).values_list("id", flat=True)
        )
    unknown = sorted(set(options.batches) - known)
    if unknown:
        first = unknown[:20]
        more = f" and {len(unknown) - len(first)} more" if len(unknown) > len(first) else ""
        raise InvalidExportOptions(
            f"Unknown batch id(s) in this project: {first}{more}.",
            extra={"fields": {"batches": f"unknown: {first}{more}"}, "unknown": len(unknown)},
        )


def dawid_skene_consensus(project: Project, options: ExportOptions) -> Consensus:
    """Dawid–Skene over the filtered judgments (needs them all in memory, unlike majority)."""
    from annotation.consensus import dawid_skene  # crowd-kit is large: only when asked for

    j = load_judgments(project.id)
    keep = np.ones(len(j), dtype=bool)
    excluded = excluded_annotator_ids(project_id=project.id)
    if excluded:
        keep &= ~np.isin(j.annotator, excluded)
    if options.batches:
        keep &= np.isin(j.batch, options.batches)
    if options.judged_after is not None:
        keep &= j.created >= int(options.judged_after.timestamp())
    if options.judged_before is not None:
        keep &= j.created < int(options.judged_before.timestamp())
    if not options.include_gold:
        keep &= j.gold < 0
    j = j.subset(keep)
    ids, unit = np.unique(j.comparison_id, return_inverse=True)
    if len(ids) == 0:
        return Consensus(ids, ids, np.zeros(0))
    gold = j.gold >= 0
    result = dawid_skene(
        unit.astype(np.int64),
        j.annotator,
        j.choice,
        ag.NOMINAL_VALUES,
        gold_units=unit[gold].astype(np.int64),
        gold_values=j.gold[gold],
    )
    return Consensus(ids, result.labels, result.confidence)


def in_test_split(prompt_id: str, seed: int, fraction: float) -> bool:
    """Deterministic split by prompt: a hash of (seed, prompt) against the test fraction."""
    digest = hashlib.sha256(f"{seed}:{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


CHOICE_INDEX = {"A": ag.A, "B": ag.B, "tie": ag.TIE, "both_bad": ag.BOTH_BAD}


def _aggregate_sql() -> tuple[str, str, str]:
    if connection.vendor == "postgresql":
        return (
            "array_agg(j.id ORDER BY j.id)",
            "array_agg(j.choice ORDER BY j.id)",
            "array_agg(COALESCE(j.strength, 0) ORDER BY j.id)",
        )
    return ("group_concat(j.id)", "group_concat(j.choice)", "group_concat(COALESCE(j.strength, 0))")


def _split_list(value: Any, kind: type) -> list[Any]:
    """An aggregated column: a list (PostgreSQL) or a comma-joined string (SQLite)."""
    if isinstance(value, list):
        return value
    return [kind(v) for v in str(value).split(",")] if value is not None else []


def _stream_rows(
    project: Project, options: ExportOptions, consensus: Consensus | None, counts: dict[str, int]
) -> Iterator[tuple[bool, dict[str, Any]]]:
    """``(is_test, row)`` for every comparison kept, read with a server-side cursor: each
    comparison arrives with its judgments aggregated, so memory stays flat at any size."""
    ids_agg, choices_agg, strengths_agg = _aggregate_sql()
    where = ["j.project_id = %s"]
    params: list[Any] = [project.id]
    excluded = excluded_annotator_ids(project_id=project.id)
    if excluded:
        where.append("j.annotator_id NOT IN (" + ", ".join(["%s"] * len(excluded)) + ")")
        params.extend(excluded)
    if options.judged_after is not None:
        where.append("j.created_at >= %s")
        params.append(connection.ops.adapt_datetimefield_value(options.judged_after))
    if options.judged_before is not None:
        where.append("j.created_at < %s")
        params.append(connection.ops.adapt_datetimefield_value(options.judged_before))
    outer = ["c.project_id = %s"]
    outer_params: list[Any] = [project.id]
    if not options.include_gold:
        outer.append("c.is_gold = %s")
        outer_params.append(False)
    # batches: in the statement while they fit its parameters, else checked on each row
    only_batches: set[int] | None = None
    if len(options.batches) > chunk_size() - len(params) - len(outer_params):
        only_batches = set(options.batches)
    elif options.batches:
        outer.append("c.batch_id IN (" + ", ".join(["%s"] * len(options.batches)) + ")")
        outer_params.extend(options.batches)
    sql = (
        "SELECT c.id, c.batch_id, p.external_id, p.messages, ra.content, rb.content, "
        "v.ids, v.choices, v.strengths "
        f"FROM (SELECT j.comparison_id AS cid, {ids_agg} AS ids, {choices_agg} AS choices, "
        f"{strengths_agg} AS strengths FROM annotation_judgment j "
        f"WHERE {' AND '.join(where)} GROUP BY j.comparison_id) v "
        "JOIN annotation_comparison c ON c.id = v.cid "
        "JOIN annotation_prompt p ON p.id = c.prompt_id "
        "JOIN annotation_response ra ON ra.id = c.response_a_id "
        "JOIN annotation_response rb ON rb.id = c.response_b_id "
        f"WHERE {' AND '.join(outer)} ORDER BY c.id"
    )
    margin_of = [0.0] * 5
    for strength, value in options.margins.items():
        margin_of[strength] = value
    with transaction.atomic():  # a named (server-side) cursor lives in a transaction
        cursor = connection.chunked_cursor()
        try:
            cursor.execute(sql, params + outer_params)
            for rows in _read_ahead(cursor):
                for comparison_id, batch_id, prompt_id, messages, a, b, ids, ch, st in rows:
                    if only_batches is not None and batch_id not in only_batches:
                        continue
                    counts["comparisons_judged"] += 1
                    choices = [CHOICE_INDEX[c] for c in _split_list(ch, str)]
                    tally = [0, 0, 0, 0]
                    for c in choices:
                        tally[c] += 1
                    votes = len(choices)
                    if consensus is not None:
                        label, confidence = consensus.lookup(comparison_id)
                    else:
                        top = max(tally)
                        label = tally.index(top) if tally.count(top) == 1 else -1
                        confidence = top / votes
                    reason = _skip_reason(options, votes, label, confidence)
                    if reason:
                        counts[reason] += 1
                        continue
                    strengths = _split_list(st, int)
                    agreeing = [
                        s for c, s in zip(choices, strengths, strict=True) if c == label and s
                    ]
                    decided = label in (ag.A, ag.B) and bool(agreeing)
                    margin = sum(margin_of[s] for s in agreeing) / len(agreeing) if decided else 0.0
                    median_strength = median_level(agreeing) if decided else None
                    counts["rows"] += 1
                    yield (
                        in_test_split(prompt_id, options.seed, options.test_fraction),
                        _row(
                            median_strength,
                            comparison_id,
                            batch_id,
                            prompt_id,
                            messages,
                            a,
                            b,
                            label,
                            confidence,
                            tally,
                            margin,
                            _split_list(ids, int),
                            options,
                        ),
                    )
        finally:
            cursor.close()


def _read_ahead(cursor: Any, size: int = 2000, depth: int = 4) -> Iterator[list[Any]]:
    """Batches of rows fetched by a thread, so that the database produces the next batch
    while this thread formats the current one (the driver releases the GIL while waiting)."""
    ready: queue.Queue[list[Any] | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set() and (rows := cursor.fetchmany(size)):
                ready.put(rows)
        except BaseException as exc:  # handed over and raised in the reading thread
            ready.put(exc)
            return
        ready.put(None)

    thread = threading.Thread(target=fetch, name="export-fetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # let a fetcher blocked on a full queue finish
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def median_level(levels: list[int]) -> int:
    """The median strength level of the agreeing votes; with an even count, the mean of the
    two middle levels rounded down (votes of 4 and 2 are a 3, "better": neither the strongest
    vote nor the weakest speaks for both)."""
    ordered = sorted(levels)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) // 2


def _skip_reason(options: ExportOptions, votes: int, label: int, confidence: float) -> str:
    if votes < options.min_votes:
        return "few_votes"
    if label < 0:
        return "no_consensus"
    if confidence < options.min_confidence:
        return "low_confidence"
    if label == ag.TIE and options.ties == "exclude":
        return "tie"
    if label == ag.BOTH_BAD and options.both_bad == "exclude":
        return "both_bad"
    return ""


def _row(
    strength: int | None,
    comparison_id: int,
    batch_id: int,
    prompt_id: str,
    messages: Any,
    a: str,
    b: str,
    label: int,
    confidence: float,
    tally: list[int],
    margin: float,
    judgment_ids: list[int],
    options: ExportOptions,
) -> dict[str, Any]:
    if isinstance(messages, (str, bytes)):
        messages = orjson.loads(messages)
    chosen, rejected = (b, a) if label == ag.B else (a, b)
    if options.style == "conversational":
        prompt: Any = messages
        chosen_out: Any = [{"role": "assistant", "content": chosen}]
        rejected_out: Any = [{"role": "assistant", "content": rejected}]
    else:
        prompt = _as_text(messages)
        chosen_out, rejected_out = chosen, rejected
    return {
        "prompt": prompt,
        "chosen": chosen_out,
        "rejected": rejected_out,
        "margin": round(margin, 4),
        "strength": strength,
        "label": LABELS[label],
        "votes": len(judgment_ids),
        "label_counts": dict(zip(LABELS, tally, strict=True)),
        "agreement": round(confidence, 4),
        "comparison_id": comparison_id,
        "batch_id": batch_id,
        "prompt_id": prompt_id,
        "judgment_ids": judgment_ids,
    }


def _as_text(messages: list[dict[str, str]]) -> str:
    """A conversation as one string: the user turn alone, or role-labelled turns."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"


class _HashingWriter:
    """Writes bytes to a file and keeps its sha256, size and line count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[bytes] = path.open("wb")
        self.sha = hashlib.sha256()
        self.bytes = 0
        self.rows = 0

    def write_row(self, row: dict[str, Any]) -> None:
        line = orjson.dumps(row) + b"\n"
        self.handle.write(line)
        self.sha.update(line)
        self.bytes += len(line)
        self.rows += 1

    def close(self) -> dict[str, Any]:
        self.handle.close()
        return {"sha256": self.sha.hexdigest(), "bytes": self.bytes, "rows": self.rows}


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _write_files(
    project: Project,
    options: ExportOptions,
    consensus: Consensus | None,
    counts: dict[str, int],
    folder: Path,
    progress: ProgressFn,
) -> dict[str, dict[str, Any]]:
    writers = {split: _HashingWriter(folder / f"{split}.jsonl") for split in ("train", "test")}
    total = max(Comparison.objects.filter(project=project).count(), 1)
    done = 0
    for is_test, row in _stream_rows(project, options, consensus, counts):
        split = "test" if is_test else "train"
        writers[split].write_row(row)
        done += 1
        if done % 50_000 == 0:
            progress(0.95 * done / total)
    files = {f"{split}.jsonl": w.close() for split, w in writers.items()}
    for split in ("train", "test"):  # an empty split is said to be empty, not a 0-byte file
        if not files[f"{split}.jsonl"]["rows"]:
            (folder / f"{split}.jsonl").unlink(missing_ok=True)
            del files[f"{split}.jsonl"]
    if not done:
        raise EmptyExport(
            "No comparison is left after the filters: "
            + (
                ", ".join(
                    f"{v} {k.replace('_', ' ')}"
                    for k, v in counts.items()
                    if v and k not in ("rows", "comparisons_judged")
                )
                or "no judged comparison matches"
            )
            + ".",
            extra={"counts": dict(counts)},
        )
    if "parquet" in options.formats:
        for split in ("train", "test"):
            rows = files.get(f"{split}.jsonl", {}).get("rows", 0)
            if not rows:
                continue
            path = folder / f"{split}.parquet"
            _jsonl_to_parquet(folder / f"{split}.jsonl", path)
            files[path.name] = {
                "sha256": _file_digest(path),
                "bytes": path.stat().st_size,
                "rows": rows,
            }
    if "hf" in options.formats:
        files.update(_save_hf(folder, files))
    return files


def _jsonl_to_parquet(source: Path, target: Path) -> None:
    """Stream a JSONL file into Parquet with pyarrow's block reader (bounded memory)."""
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    reader = pa_json.open_json(
        source, read_options=pa_json.ReadOptions(block_size=2 << 20, use_threads=False)
    )
    with pq.ParquetWriter(target, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch, row_group_size=len(batch))


def _save_hf(folder: Path, files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A ``datasets.DatasetDict`` saved to disk (``load_from_disk`` reads it back)."""
    from datasets import load_dataset

    data_files = {
        split: str(folder / f"{split}.jsonl")
        for split in ("train", "test")
        if f"{split}.jsonl" in files
    }
    dataset = load_dataset("json", data_files=data_files, cache_dir=str(folder / ".hf-cache"))
    target = folder / "hf"
    dataset.save_to_disk(str(target))
    shutil.rmtree(folder / ".hf-cache", ignore_errors=True)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    return {
        "hf": {
            "sha256": "",
            "bytes": size,
            "rows": sum(files[f"{s}.jsonl"]["rows"] for s in data_files),
        }
    }


def create_export(*, project: Project, options: ExportOptions, user: Any) -> DatasetExport:
    """Write an export now. Bad filters or an empty result raise, and nothing is recorded."""
    check_batches(project, options)
    export = DatasetExport.objects.create(
        project=project, created_by=user, filters=options.as_json(), status=ExportStatus.RUNNING
    )
    try:
        return _finish(export, project, options)
    except InvalidExportOptions:
        export.delete()
        raise


def run_export(export_id: int) -> DatasetExport:
    """Task body for a queued export (idempotent: a finished export is left as it is)."""
    from annotation.export_options import parse_export_options

    export = DatasetExport.objects.select_related("project").get(pk=export_id)
    if export.status in (ExportStatus.SUCCEEDED, ExportStatus.FAILED):
        return export
    DatasetExport.objects.filter(pk=export.pk).update(status=ExportStatus.RUNNING)
    try:
        options = parse_export_options({k: v for k, v in export.filters.items() if v is not None})
        check_batches(export.project, options)
        return _finish(export, export.project, options)
    except InvalidExportOptions as exc:
        _fail(export, exc.message)
        return export


def _finish(export: DatasetExport, project: Project, options: ExportOptions) -> DatasetExport:
    root = export_root()
    temporary = root / f".tmp-{export.pk}"
    final = root / str(export.pk)
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)

    def progress(value: float) -> None:
        DatasetExport.objects.filter(pk=export.pk).update(progress=round(value, 3))

    counts: dict[str, int] = {
        "comparisons_judged": 0,
        "rows": 0,
        "few_votes": 0,
        "no_consensus": 0,
        "low_confidence": 0,
        "tie": 0,
        "both_bad": 0,
    }
    try:
        consensus = (
            dawid_skene_consensus(project, options) if options.consensus == "dawid_skene" else None
        )
        files = _write_files(project, options, consensus, counts, temporary, progress)
        shutil.rmtree(final, ignore_errors=True)
        temporary.rename(final)
    except InvalidExportOptions:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        _fail(export, f"{type(exc).__name__}: {exc}")
        raise
    export.files = files
    export.counts = counts
    export.train_rows = files.get("train.jsonl", {}).get("rows", 0)
    export.test_rows = files.get("test.jsonl", {}).get("rows", 0)
    export.path = str(final.relative_to(settings.ARTIFACT_ROOT))
    export.status = ExportStatus.SUCCEEDED
    export.progress = 1.0
    export.finished_at = timezone.now()
    export.save(
        update_fields=[
            "files",
            "counts",
            "train_rows",
            "test_rows",
            "path",
            "status",
            "progress",
            "finished_at",
        ]
    )
    return export


def _fail(export: DatasetExport, message: str) -> None:
    DatasetExport.objects.filter(pk=export.pk).update(
        status=ExportStatus.FAILED, error=message, finished_at=timezone.now()
    )
    export.refresh_from_db()


def export_file_path(export: DatasetExport, name: str) -> Path | None:
    """The path of one of the export's files, or None (never outside the export folder)."""
    if export.status != ExportStatus.SUCCEEDED or name not in export.files or name == "hf":
        return None
    folder = (Path(settings.ARTIFACT_ROOT) / export.path).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        return None
    return path
