"""Import comparisons into a project: streaming, chunked bulk inserts, atomic by default.

An import with any bad line imports nothing and reports every bad line (up to
``MAX_REPORTED_ERRORS``) with its number and reason, unless ``skip_bad_lines`` is set: then
the good lines are imported and the bad ones listed. Re-importing the same prompts, responses
and pairs creates nothing new (prompts are keyed by external id, responses by content hash,
comparisons by their canonical pair).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any

from django.db import transaction

from annotation.import_records import (
    BadLine,
    PromptRecord,
    RecordError,
    canonical_pairs,
    iter_json_values,
)
from annotation.import_records import parse_record as parse_import_record
from annotation.import_sql import (
    lock_project_imports,
    supports_fast_path,
    write_chunk_postgres,
)
from annotation.models import (
    GOLD_TARGET_VOTES,
    Batch,
    BatchSource,
    Comparison,
    Project,
    Prompt,
    Response,
)
from preflab.db_chunks import chunk_size, chunked
from preflab.errors import InvalidInputError

CHUNK_RECORDS = 5000
MAX_REPORTED_ERRORS = 1000
# Batch.name's column: a name made from a long file name is cut to fit
BATCH_NAME_CHARS: int = Batch._meta.get_field("name").max_length or 200
MAX_FILE_NAME_CHARS = 1000  # the file name kept in the batch's metadata


class Pairing(StrEnum):
    """How a prompt's N candidates become comparisons."""

    ALL_PAIRS = "all_pairs"
    RANDOM_PAIRS = "random_pairs"
    ADJACENT = "adjacent"


@dataclass(frozen=True)
class ImportOptions:
    pairing: Pairing = Pairing.ALL_PAIRS
    pairs_per_prompt: int = 3
    skip_bad_lines: bool = False
    batch_name: str = ""
    seed: int = 0


@dataclass
class ImportReport:
    batch_id: int | None = None
    lines: int = 0
    records_imported: int = 0
    prompts_created: int = 0
    responses_created: int = 0
    comparisons_created: int = 0
    comparisons_existing: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    bad_line_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "lines": self.lines,
            "records_imported": self.records_imported,
            "prompts_created": self.prompts_created,
            "responses_created": self.responses_created,
            "comparisons_created": self.comparisons_created,
            "comparisons_existing": self.comparisons_existing,
            "bad_line_count": self.bad_line_count,
            "bad_lines": [{"line": b.line, "message": b.message} for b in self.bad_lines],
        }


class ImportRejected(InvalidInputError):
    code = "invalid_import"


def pair_indices(n: int, options: ImportOptions, key: str) -> list[tuple[int, int]]:
    """Index pairs of ``n`` candidates by the pairing strategy (deterministic per key)."""
    if options.pairing is Pairing.ADJACENT:
        return [(i, i + 1) for i in range(n - 1)]
    every = list(itertools.combinations(range(n), 2))
    if options.pairing is Pairing.ALL_PAIRS:
        return every
    rng = random.Random(f"{options.seed}:{key}")  # noqa: S311 - sampling, not security
    return sorted(rng.sample(every, min(options.pairs_per_prompt, len(every))))


def _records(stream: IO[bytes], report: ImportReport) -> Iterator[PromptRecord]:
    """The file's valid records; bad lines (duplicate ids included) go to ``report`` in line
    order, as they are read."""
    seen_ids: dict[str, int] = {}
    for line, value in iter_json_values(stream):
        report.lines = max(report.lines, line)
        if isinstance(value, BadLine):
            _bad(report, value)
            continue
        try:
            record = parse_import_record(line, value)
        except RecordError as exc:
            _bad(report, BadLine(line, str(exc)))
            continue
        first = seen_ids.get(record.external_id)
        if first is not None:  # (two elements of a JSON array may share a line)
            _bad(
                report,
                BadLine(line, f"duplicate id {record.external_id!r} (first on line {first})"),
            )
            continue
        seen_ids[record.external_id] = line
        yield record


def _bad(report: ImportReport, bad: BadLine) -> None:
    report.bad_line_count += 1
    if len(report.bad_lines) < MAX_REPORTED_ERRORS:
        report.bad_lines.append(bad)


@transaction.atomic
def import_comparisons(
    *,
    project: Project,
    stream: IO[bytes],
    options: ImportOptions,
    user: Any | None = None,
    source_name: str = "",
) -> ImportReport:
    """Import a JSONL / JSON-array stream into a new batch of ``project``.

    Raises :class:`ImportRejected` (nothing written) when a line is bad and
    ``options.skip_bad_lines`` is off, or when no line is importable.
    """
    report = ImportReport()
    if supports_fast_path():
        lock_project_imports(project)
    batch = Batch.objects.create(
        project=project,
        name=(options.batch_name or f"Import {source_name}".strip())[:BATCH_NAME_CHARS],
        source=BatchSource.IMPORT,
        created_by=user,
        metadata={
            "file": source_name[:MAX_FILE_NAME_CHARS],
            "pairing": options.pairing.value,
            "pairs_per_prompt": options.pairs_per_prompt,
            "seed": options.seed,
        },
    )
    report.batch_id = batch.id
    for chunk in chunked(_records(stream, report), CHUNK_RECORDS):
        if report.bad_line_count and not options.skip_bad_lines:
            continue  # keep validating the rest of the file; nothing will be kept
        _write_chunk(project, batch, chunk, options, report)

    if report.bad_line_count and not options.skip_bad_lines:
        transaction.set_rollback(True)
        raise ImportRejected(
            f"{report.bad_line_count} bad line(s); nothing was imported "
            f"(first: line {report.bad_lines[0].line}: {report.bad_lines[0].message}).",
            extra=report.as_dict() | {"batch_id": None},
        )
    if report.records_imported == 0 and report.bad_line_count == 0 and report.lines == 0:
        transaction.set_rollback(True)
        raise ImportRejected("The file holds no records.", extra={"lines": 0})
    batch.comparison_count = report.comparisons_created
    batch.save(update_fields=["comparison_count"])
    return report


def _pairs_for(options: ImportOptions) -> Callable[[PromptRecord], list[tuple[int, int, str]]]:
    def pairs(record: PromptRecord) -> list[tuple[int, int, str]]:
        if record.explicit_pairs:
            return record.explicit_pairs
        indices = pair_indices(len(record.responses), options, record.external_id)
        return [(i, j, "") for i, j in indices]

    return pairs


def _write_chunk(
    project: Project,
    batch: Batch,
    records: list[PromptRecord],
    options: ImportOptions,
    report: ImportReport,
) -> None:
    if not records:
        return
    if supports_fast_path():
        prompts, responses, created, existing = write_chunk_postgres(
            project, batch, records, _pairs_for(options)
        )
        report.prompts_created += prompts
        report.responses_created += responses
        report.comparisons_created += created
        report.comparisons_existing += existing
        report.records_imported += len(records)
        return
    # 1. Prompts, keyed by external id (existing prompts are reused as they are).
    ids = [r.external_id for r in records]
    before = sum(
        Prompt.objects.filter(project=project, external_id__in=chunk).count()
        for chunk in chunked(ids)
    )
    Prompt.objects.bulk_create(
        [
            Prompt(
                project=project, external_id=r.external_id, messages=r.messages, metadata=r.metadata
            )
            for r in records
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    prompt_ids: dict[str, int] = {}
    for chunk in chunked(ids):
        prompt_ids.update(
            Prompt.objects.filter(project=project, external_id__in=chunk).values_list(
                "external_id", "id"
            )
        )
    report.prompts_created += len(prompt_ids) - before

    # 2. Responses, keyed by (prompt, content hash).
    wanted: dict[tuple[int, int], Response] = {}
    for r in records:
        pid = prompt_ids[r.external_id]
        for spec in r.responses:
            wanted.setdefault(
                (pid, spec.content_hash),
                Response(
                    prompt_id=pid,
                    content=spec.content,
                    content_hash=spec.content_hash,
                    metadata=spec.metadata,
                ),
            )
    # (prompt, hash) keys in chunks: one statement names each chunk's prompts and hashes
    key_chunks = list(chunked(wanted, chunk_size(lists=2)))

    def stored() -> Iterator[tuple[int, int, int]]:
        for keys in key_chunks:
            yield from Response.objects.filter(
                prompt_id__in={pid for pid, _ in keys}, content_hash__in={sha for _, sha in keys}
            ).values_list("id", "prompt_id", "content_hash")

    before = len({(pid, sha) for _, pid, sha in stored() if (pid, sha) in wanted})
    Response.objects.bulk_create(list(wanted.values()), ignore_conflicts=True, batch_size=1000)
    response_ids = {(pid, sha): rid for rid, pid, sha in stored() if (pid, sha) in wanted}
    report.responses_created += len(response_ids) - before

    # 3. Comparisons in canonical order (smaller response id is A).
    pairs = canonical_pairs(
        (
            (pid, r, [response_ids[(pid, spec.content_hash)] for spec in r.responses])
            for r in records
            for pid in (prompt_ids[r.external_id],)
        ),
        _pairs_for(options),
    )
    comparisons = [
        Comparison(
            project=project,
            batch=batch,
            prompt_id=pid,
            response_a_id=a,
            response_b_id=b,
            gold_choice=gold,
            is_gold=bool(gold),
            target_votes=GOLD_TARGET_VOTES if gold else project.overlap_k,
        )
        for pid, a, b, gold in pairs
    ]
    before = Comparison.objects.filter(batch=batch).count()
    Comparison.objects.bulk_create(comparisons, ignore_conflicts=True, batch_size=1000)
    created = Comparison.objects.filter(batch=batch).count() - before
    report.comparisons_created += created
    report.comparisons_existing += len(comparisons) - created
    report.records_imported += len(records)
