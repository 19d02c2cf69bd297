"""Import comparisons into a project: streaming, chunked bulk inserts, atomic by default.

An import with any bad line imports nothing and reports every bad line (up to
``MAX_REPORTED_ERRORS``) with its number and reason, unless ``skip_bad_lines`` is set: then
the good lines are imported and the bad ones listed. Re-importing the same prompts, responses
and pairs creates nothing new (prompts are keyed by external id, responses by content hash,
comparisons by their canonical pair).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.db import transaction

from annotation.comparison_specs import PromptComparisons
from annotation.import_records import BadLine, RecordError, iter_json_values
from annotation.import_records import parse_record as parse_import_record
from annotation.models import BatchSource, Project
from annotation.pairing import Pairing as Pairing
from annotation.pairing import candidate_pairs
from annotation.publishing import BATCH_NAME_CHARS as BATCH_NAME_CHARS
from annotation.publishing import publish_comparisons
from preflab.db_chunks import chunked
from preflab.errors import InvalidInputError

CHUNK_RECORDS = 5000
MAX_REPORTED_ERRORS = 1000
MAX_FILE_NAME_CHARS = 1000  # the file name kept in the batch's metadata


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
    return candidate_pairs(
        n, options.pairing, pairs_per_prompt=options.pairs_per_prompt, seed=options.seed, key=key
    )


def _records(
    stream: IO[bytes],
    report: ImportReport,
    options: ImportOptions,
    on_bad_line: Callable[[BadLine], None] | None = None,
) -> Iterator[PromptComparisons]:
    """The file's valid records, with the pairs to ask among their candidates (explicit, or
    by the pairing strategy); bad lines (duplicate ids included) go to ``report`` in line
    order, as they are read."""
    seen_ids: dict[str, int] = {}
    for line, value in iter_json_values(stream):
        report.lines = max(report.lines, line)
        if isinstance(value, BadLine):
            _bad(report, on_bad_line, value)
            continue
        try:
            record = parse_import_record(line, value)
        except RecordError as exc:
            _bad(report, on_bad_line, BadLine(line, str(exc)))
            continue
        first = seen_ids.get(record.external_id)
        if first is not None:  # (two elements of a JSON array may share a line)
            _bad(
                report,
                on_bad_line,
                BadLine(line, f"duplicate id {record.external_id!r} (first on line {first})"),
            )
            continue
        seen_ids[record.external_id] = line
        pairs = record.explicit_pairs or [
            (i, j, "") for i, j in pair_indices(len(record.responses), options, record.external_id)
        ]
        yield PromptComparisons(
            record.external_id, record.messages, record.metadata, record.responses, pairs
        )


def _bad(report: ImportReport, on_bad_line: Callable[[BadLine], None] | None, bad: BadLine) -> None:
    if on_bad_line is not None:
        on_bad_line(bad)
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
    progress: Callable[[ImportReport], None] | None = None,
    on_bad_line: Callable[[BadLine], None] | None = None,
    chunk_records: int = CHUNK_RECORDS,
) -> ImportReport:
    """Import a JSONL / JSON-array stream into a new batch of ``project``, published chunk by
    chunk as the file is read (:func:`annotation.publishing.publish_comparisons`).

    Raises :class:`ImportRejected` (nothing written) when a line is bad and
    ``options.skip_bad_lines`` is off, or when no line is importable.

    ``progress`` is called with the report so far between chunks (every ``chunk_records``
    records read, the previous chunk written); an exception it raises (a cancel) ends the
    import and rolls everything back. ``on_bad_line`` sees every bad line, in line order
    (the report keeps only the first ``MAX_REPORTED_ERRORS``).
    """
    report = ImportReport()

    def chunks() -> Iterator[list[PromptComparisons]]:
        records = _records(stream, report, options, on_bad_line)
        for chunk in chunked(records, chunk_records):
            if progress is not None:
                progress(report)
            if report.bad_line_count and not options.skip_bad_lines:
                continue  # keep validating the rest of the file; nothing will be kept
            report.records_imported += len(chunk)
            yield chunk

    published = publish_comparisons(
        project=project,
        source=BatchSource.IMPORT,
        name=options.batch_name or f"Import {source_name}".strip(),
        chunks=chunks(),
        created_by=user,
        metadata={
            "file": source_name[:MAX_FILE_NAME_CHARS],
            "pairing": options.pairing.value,
            "pairs_per_prompt": options.pairs_per_prompt,
            "seed": options.seed,
        },
    )
    report.batch_id = published.batch.id
    report.prompts_created = published.prompts_created
    report.responses_created = published.responses_created
    report.comparisons_created = published.comparisons_created
    report.comparisons_existing = published.comparisons_existing
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
    return report
