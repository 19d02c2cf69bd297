"""Export agreement-gated preference datasets in TRL's format, as immutable snapshots.

Consensus is computed from the project's judgments (excluded annotators left out), rows are
streamed from a server-side cursor into JSONL (and Parquet / a ``datasets`` directory on
request), split into train and test by prompt, hashed, and recorded as a
:class:`DatasetExport`. Files are written to a temporary folder and renamed into place only
when complete.
"""

from __future__ import annotations

import hashlib
import shutil
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
from annotation.consensus import dawid_skene
from annotation.export_options import ExportOptions, InvalidExportOptions
from annotation.models import (
    AnnotatorExclusion,
    Batch,
    DatasetExport,
    ExportStatus,
    Project,
)
from annotation.quality import JudgmentArrays, load_judgments

LABELS = ("A", "B", "tie", "both_bad")
ProgressFn = Callable[[float], None]


@dataclass
class Selection:
    """The comparisons an export keeps, with their consensus (indexed like ``comparison_id``)."""

    comparison_id: NDArray[np.int64]  # sorted
    label: NDArray[np.int64]
    confidence: NDArray[np.float64]
    votes: NDArray[np.int64]
    label_counts: NDArray[np.int64]  # (n, 4)
    margin: NDArray[np.float64]
    judgment_ids: list[list[int]]
    counts: dict[str, int]


def export_root() -> Path:
    return Path(settings.ARTIFACT_ROOT) / "exports"


def select(project: Project, options: ExportOptions) -> Selection:
    """Consensus per comparison under the options; raises when nothing is left."""
    if options.batches:
        known = set(
            Batch.objects.filter(project=project, id__in=options.batches).values_list(
                "id", flat=True
            )
        )
        unknown = sorted(set(options.batches) - known)
        if unknown:
            raise InvalidExportOptions(
                f"Unknown batch id(s) in this project: {unknown}.",
                extra={"fields": {"batches": f"unknown: {unknown}"}},
            )
    j = load_judgments(project.id)
    keep = np.ones(len(j), dtype=bool)
    excluded = list(
        AnnotatorExclusion.objects.filter(project=project, revoked_at__isnull=True).values_list(
            "annotator_id", flat=True
        )
    )
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
    return _consensus(j, options)


def _consensus(j: JudgmentArrays, options: ExportOptions) -> Selection:
    ids, unit = np.unique(j.comparison_id, return_inverse=True)
    counts = ag.value_counts(unit.astype(np.int64), j.choice, ag.NOMINAL_VALUES)
    if len(ids) == 0:
        raise InvalidExportOptions(
            "No judged comparison matches these filters.", extra={"counts": {"comparisons": 0}}
        )
    if options.consensus == "dawid_skene":
        gold_mask = j.gold >= 0
        result = dawid_skene(
            unit.astype(np.int64),
            j.annotator,
            j.choice,
            ag.NOMINAL_VALUES,
            gold_units=unit[gold_mask].astype(np.int64),
            gold_values=j.gold[gold_mask],
        )
        label, confidence = result.labels, result.confidence
    else:
        label, confidence = ag.majority_vote(counts)
    votes = counts.sum(axis=1)

    reasons = {
        "few_votes": votes < options.min_votes,
        "no_consensus": label < 0,
        "low_confidence": confidence < options.min_confidence,
        "tie": (label == ag.TIE) & (options.ties == "exclude"),
        "both_bad": (label == ag.BOTH_BAD) & (options.both_bad == "exclude"),
    }
    keep = np.ones(len(ids), dtype=bool)
    skipped: dict[str, int] = {}
    for reason, mask in reasons.items():  # each comparison counted under its first reason
        skipped[reason] = int((mask & keep).sum())
        keep &= ~mask
    if not keep.any():
        raise InvalidExportOptions(
            "No comparison is left after the filters: "
            + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items() if v)
            + ".",
            extra={"counts": {"comparisons": len(ids), **skipped}},
        )

    margin_of = np.zeros(5)
    for strength, value in options.margins.items():
        margin_of[strength] = value
    agrees = label[unit] == j.choice
    sums = np.bincount(
        unit, weights=np.where(agrees, margin_of[j.strength], 0.0), minlength=len(ids)
    )
    n_agree = np.bincount(unit, weights=agrees.astype(float), minlength=len(ids))
    decided = (label == ag.A) | (label == ag.B)
    margin = np.where(decided & (n_agree > 0), sums / np.maximum(n_agree, 1), 0.0)

    order = np.argsort(unit, kind="stable")
    bounds = np.searchsorted(unit[order], np.arange(len(ids) + 1))
    judgment_ids = [
        j.judgment_id[order[bounds[i] : bounds[i + 1]]].tolist() for i in np.flatnonzero(keep)
    ]
    return Selection(
        comparison_id=ids[keep],
        label=label[keep],
        confidence=confidence[keep],
        votes=votes[keep],
        label_counts=counts[keep],
        margin=margin[keep],
        judgment_ids=judgment_ids,
        counts={"comparisons_judged": len(ids), "rows": int(keep.sum()), **skipped},
    )


def in_test_split(prompt_id: str, seed: int, fraction: float) -> bool:
    """Deterministic split by prompt: a hash of (seed, prompt) against the test fraction."""
    digest = hashlib.sha256(f"{seed}:{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _stream_rows(
    project: Project, selection: Selection, options: ExportOptions
) -> Iterator[tuple[bool, dict[str, Any]]]:
    """``(is_test, row)`` for every kept comparison, read with a server-side cursor."""
    wanted = selection.comparison_id
    sql = (
        "SELECT c.id, c.batch_id, p.external_id, p.messages, ra.content, rb.content "
        "FROM annotation_comparison c JOIN annotation_prompt p ON p.id = c.prompt_id "
        "JOIN annotation_response ra ON ra.id = c.response_a_id "
        "JOIN annotation_response rb ON rb.id = c.response_b_id "
        "WHERE c.project_id = %s AND c.id >= %s AND c.id <= %s ORDER BY c.id"
    )
    with transaction.atomic():  # a named (server-side) cursor lives in a transaction
        cursor = connection.chunked_cursor()
        try:
            cursor.execute(sql, [project.id, int(wanted[0]), int(wanted[-1])])
            while rows := cursor.fetchmany(5000):
                for comparison_id, batch_id, prompt_id, messages, a, b in rows:
                    k = int(np.searchsorted(wanted, comparison_id))
                    if k >= len(wanted) or wanted[k] != comparison_id:
                        continue
                    yield (
                        in_test_split(prompt_id, options.seed, options.test_fraction),
                        _row(
                            selection,
                            k,
                            comparison_id,
                            batch_id,
                            prompt_id,
                            messages,
                            a,
                            b,
                            options,
                        ),
                    )
        finally:
            cursor.close()


def _row(
    s: Selection,
    k: int,
    comparison_id: int,
    batch_id: int,
    prompt_id: str,
    messages: Any,
    a: str,
    b: str,
    options: ExportOptions,
) -> dict[str, Any]:
    if isinstance(messages, (str, bytes)):
        messages = orjson.loads(messages)
    label = int(s.label[k])
    chosen, rejected = (b, a) if label == ag.B else (a, b)
    if options.style == "conversational":
        prompt: Any = messages
        chosen_out: Any = [{"role": "assistant", "content": chosen}]
        rejected_out: Any = [{"role": "assistant", "content": rejected}]
    else:
        prompt = _as_text(messages)
        chosen_out, rejected_out = chosen, rejected
    counts = s.label_counts[k]
    return {
        "prompt": prompt,
        "chosen": chosen_out,
        "rejected": rejected_out,
        "margin": round(float(s.margin[k]), 4),
        "label": LABELS[label],
        "votes": int(s.votes[k]),
        "label_counts": {name: int(counts[i]) for i, name in enumerate(LABELS)},
        "agreement": round(float(s.confidence[k]), 4),
        "comparison_id": int(comparison_id),
        "batch_id": int(batch_id),
        "prompt_id": prompt_id,
        "judgment_ids": s.judgment_ids[k],
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
    selection: Selection,
    options: ExportOptions,
    folder: Path,
    progress: ProgressFn,
) -> dict[str, dict[str, Any]]:
    writers = {split: _HashingWriter(folder / f"{split}.jsonl") for split in ("train", "test")}
    parquet = _ParquetSink(folder) if "parquet" in options.formats else None
    total = max(len(selection.comparison_id), 1)
    done = 0
    for is_test, row in _stream_rows(project, selection, options):
        split = "test" if is_test else "train"
        writers[split].write_row(row)
        if parquet is not None:
            parquet.add(split, row)
        done += 1
        if done % 50_000 == 0:
            progress(0.95 * done / total)
    files = {f"{split}.jsonl": w.close() for split, w in writers.items()}
    if parquet is not None:
        for name, path in parquet.close().items():
            files[name] = {
                "sha256": _file_digest(path),
                "bytes": path.stat().st_size,
                "rows": files[name.replace(".parquet", ".jsonl")]["rows"],
            }
    if "hf" in options.formats:
        files.update(_save_hf(folder, files))
    return files


class _ParquetSink:
    """Row groups of 20,000 rows per split, written as they fill."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.buffers: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
        self.writers: dict[str, Any] = {}

    def add(self, split: str, row: dict[str, Any]) -> None:
        buffer = self.buffers[split]
        buffer.append(row)
        if len(buffer) >= 20_000:
            self._flush(split)

    def _flush(self, split: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = self.buffers[split]
        if not buffer:
            return
        table = pa.Table.from_pylist(buffer)
        if split not in self.writers:
            self.writers[split] = pq.ParquetWriter(self.folder / f"{split}.parquet", table.schema)
        self.writers[split].write_table(table.cast(self.writers[split].schema))
        buffer.clear()

    def close(self) -> dict[str, Path]:
        for split in ("train", "test"):
            self._flush(split)
        paths = {}
        for split, writer in self.writers.items():
            writer.close()
            paths[f"{split}.parquet"] = self.folder / f"{split}.parquet"
        return paths


def _save_hf(folder: Path, files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A ``datasets.DatasetDict`` saved to disk (``load_from_disk`` reads it back)."""
    from datasets import load_dataset

    data_files = {
        split: str(folder / f"{split}.jsonl")
        for split in ("train", "test")
        if files[f"{split}.jsonl"]["rows"]
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
    """Select, then write the files; returns the succeeded export (raises on bad filters,
    in which case nothing is recorded)."""
    selection = select(project, options)
    export = DatasetExport.objects.create(
        project=project, created_by=user, filters=options.as_json(), status=ExportStatus.RUNNING
    )
    return _finish(export, project, selection, options)


def run_export(export_id: int) -> DatasetExport:
    """Task body for a queued export (idempotent: a finished export is left as it is)."""
    from annotation.export_options import parse_export_options

    export = DatasetExport.objects.select_related("project").get(pk=export_id)
    if export.status in (ExportStatus.SUCCEEDED, ExportStatus.FAILED):
        return export
    DatasetExport.objects.filter(pk=export.pk).update(status=ExportStatus.RUNNING)
    options = parse_export_options({k: v for k, v in export.filters.items() if v is not None})
    try:
        selection = select(export.project, options)
    except InvalidExportOptions as exc:
        _fail(export, exc.message)
        return export
    return _finish(export, export.project, selection, options)


def _finish(
    export: DatasetExport, project: Project, selection: Selection, options: ExportOptions
) -> DatasetExport:
    root = export_root()
    temporary = root / f".tmp-{export.pk}"
    final = root / str(export.pk)
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)

    def progress(value: float) -> None:
        DatasetExport.objects.filter(pk=export.pk).update(progress=round(value, 3))

    try:
        files = _write_files(project, selection, options, temporary, progress)
        shutil.rmtree(final, ignore_errors=True)
        temporary.rename(final)
    except Exception as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        _fail(export, f"{type(exc).__name__}: {exc}")
        raise
    export.files = files
    export.counts = selection.counts
    export.train_rows = files["train.jsonl"]["rows"]
    export.test_rows = files["test.jsonl"]["rows"]
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
