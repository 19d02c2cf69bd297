"""Import jobs: an uploaded file imported inline (small files) or on a worker, with progress,
cancel and a downloadable list of every bad line.

Guarantees, on PostgreSQL:

- **Nothing is half-written.** :func:`annotation.importing.import_comparisons` runs in one
  transaction, and the job's final row (succeeded, its counts) is written in that same
  transaction: either the import and "succeeded" are committed together, or neither. A
  cancel is an exception raised between chunks, so it rolls the whole import back: a
  cancelled job leaves the project exactly as it was. A bad line without ``skip_bad_lines``
  imports nothing (the job fails and lists the bad lines).
- **One execution per job.** An execution holds a session advisory lock on the job for its
  whole run. A second delivery of the task (broker redelivery, a duplicate) finds the lock
  taken and returns, or finds the job finished and returns; a job whose worker died (its
  transaction rolled back by the server, its lock released with its connection) is run again
  by the redelivered task — there is nothing to undo.
- **Never stuck.** A job that reads "running" while no execution holds its lock lost its
  worker: a read marks it failed (:func:`fail_lost_jobs`). Without PostgreSQL (SQLite, the
  embedded default) the lock is replaced by the heartbeat's age
  (``PREFLAB_IMPORT_JOB_STALE_SECONDS``).

Progress (bytes read, lines read, a heartbeat) is written between chunks over a second
database connection, so that others see it while the import's own transaction is still open;
the cancel flag is read the same way. (SQLite allows one writer: there progress and cancel
take effect only before the job starts and at its end.)
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import orjson
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from annotation.import_records import BadLine
from annotation.importing import (
    ImportOptions,
    ImportRejected,
    ImportReport,
    Pairing,
    import_comparisons,
)
from annotation.models import IMPORT_JOB_FINAL_STATUSES, ImportJob, ImportJobStatus, Project
from preflab.errors import ConflictError

logger = logging.getLogger(__name__)

UPLOAD_NAME = "upload"
BAD_LINES_NAME = "bad-lines.jsonl"
JOB_CHUNK_RECORDS = 2000  # records between two progress reports / cancel checks
PREVIEW_BAD_LINES = 100  # bad lines kept on the row (all of them are in the file)
MAX_RAW_CHARS = 10_000  # of a bad line's text, in the download
LOCK_NAMESPACE = 7302  # pg advisory lock keys: (namespace, job id)


class ImportCancelled(Exception):
    """Raised between chunks once a cancel was requested: the import's transaction rolls
    back."""


class JobNotCancellable(ConflictError):
    code = "import_job_finished"


@dataclass(frozen=True)
class JobOutcome:
    """What one execution of the task did: ran the job, or left it (busy, already final)."""

    job_id: int
    ran: bool
    status: str


def import_root() -> Path:
    return Path(settings.ARTIFACT_ROOT) / "imports"


def job_folder(job: ImportJob) -> Path:
    return Path(settings.ARTIFACT_ROOT) / job.folder


def options_as_json(options: ImportOptions) -> dict[str, Any]:
    return {
        "pairing": options.pairing.value,
        "pairs_per_prompt": options.pairs_per_prompt,
        "skip_bad_lines": options.skip_bad_lines,
        "batch_name": options.batch_name,
        "seed": options.seed,
    }


def options_from_json(data: dict[str, Any]) -> ImportOptions:
    return ImportOptions(
        pairing=Pairing(data.get("pairing", Pairing.ALL_PAIRS.value)),
        pairs_per_prompt=int(data.get("pairs_per_prompt", 3)),
        skip_bad_lines=bool(data.get("skip_bad_lines", False)),
        batch_name=str(data.get("batch_name", "")),
        seed=int(data.get("seed", 0)),
    )


def create_import_job(
    *,
    project: Project,
    user: Any,
    upload: Any,
    original_name: str,
    options: ImportOptions,
) -> ImportJob:
    """Store the upload (any object with ``chunks()``, e.g. Django's ``UploadedFile``) under
    the import root and record a queued job. The file is written first: a job row never
    points at a missing file."""
    relative = Path("imports") / uuid.uuid4().hex
    folder = Path(settings.ARTIFACT_ROOT) / relative
    folder.mkdir(parents=True)
    size = 0
    try:
        with (folder / UPLOAD_NAME).open("wb") as out:
            for piece in upload.chunks():
                out.write(piece)
                size += len(piece)
        return ImportJob.objects.create(
            project=project,
            created_by=user,
            folder=str(relative),
            original_name=original_name[:1000],
            size_bytes=size,
            options=options_as_json(options),
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def enqueue_import_job(job: ImportJob) -> None:
    """Send the job's task once the transaction that created it commits."""
    from annotation.tasks import run_import_job

    transaction.on_commit(lambda: run_import_job.delay(job.pk))


def request_cancel(*, job: ImportJob) -> ImportJob:
    """Ask a job to stop: a queued job is cancelled at once, a running one at its next chunk
    (its import is rolled back). A finished job cannot be cancelled (409)."""
    if job.status in IMPORT_JOB_FINAL_STATUSES:
        raise JobNotCancellable(f"The import job has already {job.status}.")
    ImportJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    if ImportJob.objects.filter(pk=job.pk, status=ImportJobStatus.QUEUED).update(
        status=ImportJobStatus.CANCELLED,
        error="Cancelled before it started.",
        finished_at=timezone.now(),
    ):
        _remove_upload_unless_needed(job.pk)
    job.refresh_from_db()
    return job


# --- running a job -------------------------------------------------------------------------


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def _job_lock(job_id: int) -> Iterator[bool]:
    """A session advisory lock on the job for the whole execution (True when this caller
    holds it). Released at the end, or by the server when the worker's connection dies."""
    if not _is_postgres():
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, job_id])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, job_id])


def _heartbeat_fresh(job: ImportJob) -> bool:
    stale = timedelta(seconds=settings.PREFLAB_IMPORT_JOB_STALE_SECONDS)
    return job.heartbeat_at is not None and timezone.now() - job.heartbeat_at < stale


def run_import_job(job_id: int) -> JobOutcome:
    """Task body: run a queued job (idempotent: a job that is finished, or being run by
    another execution, is left as it is)."""
    with _job_lock(job_id) as acquired:
        job = ImportJob.objects.select_related("project", "created_by").get(pk=job_id)
        if not acquired or job.status in IMPORT_JOB_FINAL_STATUSES:
            return JobOutcome(job_id, False, job.status)
        if not _is_postgres() and job.status == ImportJobStatus.RUNNING and _heartbeat_fresh(job):
            return JobOutcome(job_id, False, job.status)  # another execution (no lock here)
        if job.cancel_requested:
            _finish_cancelled(job)
            return JobOutcome(job_id, True, ImportJobStatus.CANCELLED)
        _execute(job)
        job.refresh_from_db()
        return JobOutcome(job_id, True, job.status)


def run_inline(job: ImportJob) -> ImportJob:
    """Run a job that nobody else knows of yet (just created, never queued) in this
    process. It holds the job's lock like a worker, so that a read meanwhile does not take
    it for a job whose worker is gone."""
    with _job_lock(job.pk):
        _execute(job)
    job.refresh_from_db()
    return job


def _execute(job: ImportJob) -> None:
    now = timezone.now()
    claimed = ImportJob.objects.filter(
        pk=job.pk, status__in=[ImportJobStatus.QUEUED, ImportJobStatus.RUNNING]
    ).update(
        status=ImportJobStatus.RUNNING,
        attempts=job.attempts + 1,
        started_at=now,
        heartbeat_at=now,
        bytes_read=0,
        lines_read=0,
        error="",
    )
    if not claimed:  # cancelled (or failed as lost) since it was read: nothing to do
        return
    folder = job_folder(job)
    options = options_from_json(job.options)
    try:
        with (
            (folder / UPLOAD_NAME).open("rb") as stream,
            (folder / BAD_LINES_NAME).open("wb") as bad_file,
            _SideChannel(job.pk) as side,
        ):

            def on_bad_line(bad: BadLine) -> None:
                bad_file.write(orjson.dumps({"line": bad.line, "reason": bad.message}) + b"\n")

            def progress(report: ImportReport) -> None:
                bad_file.flush()
                if side.report(bytes_read=stream.tell(), lines_read=report.lines):
                    raise ImportCancelled

            with transaction.atomic():
                report = import_comparisons(
                    project=job.project,
                    stream=stream,
                    options=options,
                    user=job.created_by,
                    source_name=job.original_name,
                    progress=progress,
                    on_bad_line=on_bad_line,
                    chunk_records=JOB_CHUNK_RECORDS,
                )
                if side.cancel_requested():  # a cancel that came in during the last chunk
                    raise ImportCancelled
                _finish_succeeded(job, report, size=job.size_bytes)
    except ImportCancelled:
        _finish_cancelled(job)
    except ImportRejected as exc:
        _finish_failed(job, exc.message, exc.extra)
    except Exception as exc:
        logger.exception("Import job %s failed", job.pk)
        _finish_failed(job, f"{type(exc).__name__}: {exc}", {})
    _remove_upload_unless_needed(job.pk)


def _finish_succeeded(job: ImportJob, report: ImportReport, *, size: int) -> None:
    """In the import's transaction: the counts and the final status commit with the rows."""
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJobStatus.SUCCEEDED,
        bytes_read=size,
        lines_read=report.lines,
        records_imported=report.records_imported,
        prompts_created=report.prompts_created,
        responses_created=report.responses_created,
        comparisons_created=report.comparisons_created,
        comparisons_existing=report.comparisons_existing,
        bad_line_count=report.bad_line_count,
        bad_lines=_preview(report.bad_lines),
        batch_id=report.batch_id,
        finished_at=timezone.now(),
    )


def _finish_failed(job: ImportJob, message: str, extra: dict[str, Any]) -> None:
    bad = extra.get("bad_lines") or []
    ImportJob.objects.filter(pk=job.pk).exclude(status__in=IMPORT_JOB_FINAL_STATUSES).update(
        status=ImportJobStatus.FAILED,
        error=message,
        lines_read=int(extra.get("lines") or 0),
        bad_line_count=int(extra.get("bad_line_count") or 0),
        bad_lines=[{"line": b["line"], "message": b["message"]} for b in bad[:PREVIEW_BAD_LINES]],
        records_imported=0,
        prompts_created=0,
        responses_created=0,
        comparisons_created=0,
        comparisons_existing=0,
        batch=None,
        finished_at=timezone.now(),
    )


def _finish_cancelled(job: ImportJob) -> None:
    ImportJob.objects.filter(pk=job.pk).exclude(status__in=IMPORT_JOB_FINAL_STATUSES).update(
        status=ImportJobStatus.CANCELLED,
        error="Cancelled; nothing was imported.",
        records_imported=0,
        prompts_created=0,
        responses_created=0,
        comparisons_created=0,
        comparisons_existing=0,
        batch=None,
        finished_at=timezone.now(),
    )


def _preview(bad_lines: list[BadLine]) -> list[dict[str, Any]]:
    return [{"line": b.line, "message": b.message} for b in bad_lines[:PREVIEW_BAD_LINES]]


def _remove_upload_unless_needed(job_id: int) -> None:
    """A finished job keeps its upload only while it has bad lines to show with their text;
    a failed job keeps it too (for a look at what went wrong)."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status not in IMPORT_JOB_FINAL_STATUSES:
        return
    if job.bad_line_count == 0 and job.status != ImportJobStatus.FAILED:
        (job_folder(job) / UPLOAD_NAME).unlink(missing_ok=True)


class _SideChannel:
    """A second connection to the database (PostgreSQL), outside the import's transaction:
    progress written here is seen by others at once, and a cancel requested meanwhile is
    seen here (its statements name ``ImportJob``'s table). Elsewhere (SQLite: one writer at
    a time) it reports nothing and reads the flag through the default connection."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.conn: BaseDatabaseWrapper | None = None

    def __enter__(self) -> _SideChannel:
        if _is_postgres():
            self.conn = connections.create_connection("default")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()

    def report(self, *, bytes_read: int, lines_read: int) -> bool:
        """Write progress and a heartbeat; True when a cancel was requested."""
        if self.conn is None:
            return self.cancel_requested()
        with self.conn.cursor() as cursor:
            cursor.execute(
                "UPDATE annotation_importjob SET bytes_read = %s, lines_read = %s, "
                "heartbeat_at = %s WHERE id = %s RETURNING cancel_requested",
                [bytes_read, lines_read, timezone.now(), self.job_id],
            )
            row = cursor.fetchone()
        return bool(row and row[0])

    def cancel_requested(self) -> bool:
        if self.conn is None:
            return ImportJob.objects.filter(pk=self.job_id, cancel_requested=True).exists()
        with self.conn.cursor() as cursor:
            cursor.execute(
                "SELECT cancel_requested FROM annotation_importjob WHERE id = %s", [self.job_id]
            )
            row = cursor.fetchone()
        return bool(row and row[0])


# --- lost workers -----------------------------------------------------------------------------


def fail_lost_jobs(*, project_id: int) -> int:
    """Mark failed every running job of the project whose execution is gone: on PostgreSQL,
    no one holds its lock (checked under the lock, so a job that just finished is not
    touched); elsewhere, its heartbeat is older than ``PREFLAB_IMPORT_JOB_STALE_SECONDS``.
    Returns how many were marked."""
    running = list(
        ImportJob.objects.filter(project_id=project_id, status=ImportJobStatus.RUNNING).values_list(
            "pk", "heartbeat_at"
        )
    )
    marked = 0
    stale = timezone.now() - timedelta(seconds=settings.PREFLAB_IMPORT_JOB_STALE_SECONDS)
    for job_id, heartbeat_at in running:
        if not _is_postgres() and heartbeat_at is not None and heartbeat_at > stale:
            continue
        with _job_lock(job_id) as acquired:
            if not acquired:
                continue  # an execution is alive
            marked += ImportJob.objects.filter(pk=job_id, status=ImportJobStatus.RUNNING).update(
                status=ImportJobStatus.FAILED,
                error="The worker running this import stopped; nothing was imported. "
                "Upload the file again.",
                finished_at=timezone.now(),
            )
    return marked


# --- bad lines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadLineRow:
    line: int
    reason: str
    raw: str


def iter_bad_lines(job: ImportJob) -> Iterator[BadLineRow]:
    """Every bad line of the job in line order, with its text from the upload (cut at
    ``MAX_RAW_CHARS``; empty once the upload is gone)."""
    folder = job_folder(job)
    bad_path, upload_path = folder / BAD_LINES_NAME, folder / UPLOAD_NAME
    if not bad_path.is_file():
        return
    with bad_path.open("rb") as bad_file:
        upload: IO[bytes] | None = upload_path.open("rb") if upload_path.is_file() else None
        try:
            raw_lines = enumerate(upload, start=1) if upload is not None else None
            number, raw = 0, b""
            for entry in bad_file:
                item = orjson.loads(entry)
                line = int(item["line"])
                while raw_lines is not None and number < line:
                    step = next(raw_lines, None)
                    if step is None:
                        raw_lines = None
                        break
                    number, raw = step
                yield BadLineRow(line, str(item["reason"]), _text(raw) if number == line else "")
        finally:
            if upload is not None:
                upload.close()


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\r\n").decode("utf-8", errors="replace")[:MAX_RAW_CHARS]


def bad_line_exports(job: ImportJob, kind: str) -> Iterator[bytes]:
    """The bad lines as JSONL (``{"line", "reason", "raw"}``) or CSV (line,reason,raw)."""
    import csv
    import io

    if kind == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["line", "reason", "raw"])
        for row in iter_bad_lines(job):
            writer.writerow([row.line, row.reason, row.raw])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()
        return
    for row in iter_bad_lines(job):
        yield orjson.dumps({"line": row.line, "reason": row.reason, "raw": row.raw}) + b"\n"
