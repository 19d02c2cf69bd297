"""Import jobs: inline and queued imports of an uploaded file, progress, cancel that leaves
nothing, every bad line downloadable with its line number, one execution per job, lost
workers, bad inputs and refused roles."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test import Client
from django.utils import timezone

from annotation import import_jobs
from annotation.import_jobs import LOCK_NAMESPACE, run_import_job
from annotation.models import (
    Batch,
    Comparison,
    ImportJob,
    ImportJobStatus,
    Project,
    Prompt,
    Response,
)
from annotation.roles import Role
from annotation.services import set_membership
from tests.annotation.factories import pair_records
from tests.conftest import start_worker, stop_worker, wait_for, worker_env

pytestmark = pytest.mark.django_db


def jsonl_bytes(*records: Any) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


def body_of(response: Any) -> bytes:
    """The whole body of a streamed download."""
    return b"".join(response.streaming_content)


def url(project: Project, rest: str = "") -> str:
    return f"/api/projects/{project.id}/import-jobs/{rest}"


def upload(
    client: Client, project: Project, content: bytes, name: str = "data.jsonl", **options: Any
) -> Any:
    return client.post(url(project), {"file": SimpleUploadedFile(name, content), **options})


@pytest.fixture(autouse=True)
def artifact_root(settings: Any, tmp_path: Path) -> Path:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    return Path(settings.ARTIFACT_ROOT)


@pytest.fixture
def admin_client(client: Client, project_admin: Any) -> Client:
    client.force_login(project_admin)
    return client


BAD_LINE = b'{"id": "broken", "prompt": "Half a record'


def test_a_small_file_is_imported_in_the_request_and_the_job_comes_back_finished(
    admin_client: Client, project: Project
) -> None:
    response = upload(admin_client, project, jsonl_bytes(*pair_records(3)), batch_name="Round 1")
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["status"] == "succeeded"
    assert job["progress"] == 1.0
    assert (job["prompts_created"], job["comparisons_created"], job["bad_line_count"]) == (3, 3, 0)
    assert job["original_name"] == "data.jsonl"
    assert job["options"]["batch_name"] == "Round 1"
    assert Comparison.objects.filter(project=project).count() == 3
    assert Batch.objects.get(pk=job["batch_id"]).name == "Round 1"
    listed = admin_client.get(url(project)).json()["results"]
    assert [j["id"] for j in listed] == [job["id"]]
    detail = admin_client.get(url(project, f"{job['id']}/")).json()
    assert detail["status"] == "succeeded" and detail["comparisons_created"] == 3


def test_jobs_are_listed_newest_first(admin_client: Client, project: Project) -> None:
    first = upload(admin_client, project, jsonl_bytes(*pair_records(1, prefix="a"))).json()
    second = upload(admin_client, project, jsonl_bytes(*pair_records(1, prefix="b"))).json()
    listed = admin_client.get(url(project)).json()["results"]
    assert [j["id"] for j in listed] == [second["id"], first["id"]]


def test_a_bad_line_imports_nothing_and_is_reported_with_its_line_number(
    admin_client: Client, project: Project
) -> None:
    rows = pair_records(3)
    response = upload(admin_client, project, jsonl_bytes(rows[0], BAD_LINE, rows[1], rows[2]))
    assert response.status_code == 201
    job = response.json()
    assert job["status"] == "failed"
    assert "1 bad line" in job["error"] and "line 2" in job["error"]
    assert job["bad_line_count"] == 1
    assert [b["line"] for b in job["bad_lines"]] == [2]
    assert job["comparisons_created"] == 0
    assert not Prompt.objects.filter(project=project).exists()
    assert not Batch.objects.filter(project=project).exists()

    download = admin_client.get(url(project, f"{job['id']}/bad-lines"))
    assert download.status_code == 200
    assert "attachment" in download["Content-Disposition"]
    lines = [json.loads(x) for x in body_of(download).splitlines()]
    assert lines == [
        {"line": 2, "reason": job["bad_lines"][0]["message"], "raw": BAD_LINE.decode()}
    ]


def test_with_skip_bad_lines_the_good_lines_are_imported_and_every_bad_one_is_downloadable(
    admin_client: Client, project: Project
) -> None:
    rows = pair_records(4)
    content = jsonl_bytes(rows[0], BAD_LINE, rows[1], b"[1, 2]", rows[2], rows[3], b"nope")
    job = upload(admin_client, project, content, skip_bad_lines="true").json()
    assert job["status"] == "succeeded"
    assert (job["comparisons_created"], job["bad_line_count"]) == (4, 3)
    assert [b["line"] for b in job["bad_lines"]] == [2, 4, 7]
    download = admin_client.get(url(project, f"{job['id']}/bad-lines?as=csv"))
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    assert download["Content-Disposition"] == (
        f'attachment; filename="import-{job["id"]}-bad-lines.csv"'
    )
    table = list(csv.reader(io.StringIO(body_of(download).decode())))
    assert table[0] == ["line", "reason", "raw"]
    assert [(int(r[0]), r[2]) for r in table[1:]] == [
        (2, BAD_LINE.decode()),
        (4, "[1, 2]"),
        (7, "nope"),
    ]
    assert all(r[1] for r in table[1:])  # every line has its reason


def test_more_bad_lines_than_the_preview_are_all_in_the_download(
    admin_client: Client, project: Project
) -> None:
    content = jsonl_bytes(*pair_records(2), *[b"{oops" for _ in range(150)])
    job = upload(admin_client, project, content, skip_bad_lines="true").json()
    assert job["bad_line_count"] == 150
    assert len(job["bad_lines"]) == import_jobs.PREVIEW_BAD_LINES
    download = admin_client.get(url(project, f"{job['id']}/bad-lines"))
    numbers = [json.loads(x)["line"] for x in body_of(download).splitlines()]
    assert numbers == list(range(3, 153))


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ({}, 400, "invalid"),
        ({"file": SimpleUploadedFile("empty.jsonl", b"")}, 400, "invalid"),
        ({"file": SimpleUploadedFile("x.jsonl", b"{}\n"), "pairing": "every"}, 400, "invalid"),
        ({"file": SimpleUploadedFile("x.jsonl", b"{}\n"), "pairs_per_prompt": 0}, 400, "invalid"),
        ({"file": SimpleUploadedFile("x.jsonl", b"{}\n"), "seed": "abc"}, 400, "invalid"),
    ],
    ids=["no-file", "empty-file", "unknown-pairing", "zero-pairs", "seed-not-a-number"],
)
def test_bad_requests_are_refused_and_create_no_job(
    admin_client: Client, project: Project, data: dict[str, Any], status: int, code: str
) -> None:
    response = admin_client.post(url(project), data)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert not ImportJob.objects.exists()


def test_a_file_over_the_size_limit_is_refused(
    admin_client: Client, project: Project, settings: Any
) -> None:
    settings.PREFLAB_MAX_IMPORT_BYTES = 100
    response = upload(admin_client, project, jsonl_bytes(*pair_records(5)))
    assert response.status_code == 413
    assert response.json()["code"] == "upload_too_large"
    assert not ImportJob.objects.exists()


def test_a_file_with_only_blank_lines_fails_with_a_message(
    admin_client: Client, project: Project
) -> None:
    job = upload(admin_client, project, b"\n\n  \n").json()
    assert job["status"] == "failed"
    assert job["error"] == "The file holds no records."


def test_an_unknown_download_format_is_refused(admin_client: Client, project: Project) -> None:
    job = upload(admin_client, project, jsonl_bytes(*pair_records(1))).json()
    response = admin_client.get(url(project, f"{job['id']}/bad-lines?as=xml"))
    assert response.status_code == 400


def test_another_projects_job_is_not_found(
    admin_client: Client, project: Project, other_project: Project, make_user: Any
) -> None:
    theirs = make_user("theirs")
    set_membership(project=other_project, user=theirs, role=Role.PROJECT_ADMIN)
    other = Client()
    other.force_login(theirs)
    job = upload(other, other_project, jsonl_bytes(*pair_records(1))).json()
    for rest in (f"{job['id']}/", f"{job['id']}/bad-lines"):
        assert admin_client.get(url(project, rest)).status_code == 404
    assert admin_client.post(url(project, f"{job['id']}/cancel/")).status_code == 404


@pytest.mark.parametrize("who", ["anonymous", "annotator", "ml_engineer", "other_admin"])
def test_refused_roles_get_403_on_every_import_job_route(
    who: str,
    project: Project,
    other_project: Project,
    project_admin: Any,
    annotator: Any,
    ml_engineer: Any,
    make_user: Any,
) -> None:
    owner = Client()
    owner.force_login(project_admin)
    job = upload(owner, project, jsonl_bytes(*pair_records(2))).json()
    client = Client()
    if who == "other_admin":
        user = make_user("other-admin")
        set_membership(project=other_project, user=user, role=Role.PROJECT_ADMIN)
        client.force_login(user)
    elif who != "anonymous":
        client.force_login({"annotator": annotator, "ml_engineer": ml_engineer}[who])
    calls = [
        client.post(url(project), {"file": SimpleUploadedFile("x.jsonl", b"{}\n")}),
        client.get(url(project)),
        client.get(url(project, f"{job['id']}/")),
        client.post(url(project, f"{job['id']}/cancel/")),
        client.get(url(project, f"{job['id']}/bad-lines")),
    ]
    assert [c.status_code for c in calls] == [403] * 5
    assert ImportJob.objects.count() == 1


def queued_job(client: Client, project: Project, content: bytes, settings: Any) -> dict[str, Any]:
    settings.PREFLAB_IMPORT_INLINE_BYTES = 0  # every file goes to a worker
    response = upload(client, project, content)
    assert response.status_code == 202, response.content
    body: dict[str, Any] = response.json()
    assert body["status"] == "queued" and body["progress"] == 0.0
    return body


def test_a_queued_job_cancelled_before_it_runs_never_imports(
    admin_client: Client, project: Project, settings: Any
) -> None:
    job = queued_job(admin_client, project, jsonl_bytes(*pair_records(3)), settings)
    cancelled = admin_client.post(url(project, f"{job['id']}/cancel/"))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    outcome = run_import_job(job["id"])  # the task is delivered after all
    assert not outcome.ran and outcome.status == "cancelled"
    assert not Prompt.objects.filter(project=project).exists()
    again = admin_client.post(url(project, f"{job['id']}/cancel/"))
    assert again.status_code == 409


def test_a_finished_job_cannot_be_cancelled(admin_client: Client, project: Project) -> None:
    job = upload(admin_client, project, jsonl_bytes(*pair_records(1))).json()
    response = admin_client.post(url(project, f"{job['id']}/cancel/"))
    assert response.status_code == 409
    assert response.json()["code"] == "import_job_finished"
    assert Comparison.objects.filter(project=project).count() == 1


@pytest.fixture
def other_connection() -> Iterator[Any]:
    """A second database session (another worker, as far as the locks can tell)."""
    conn = connections.create_connection("default")
    try:
        yield conn
    finally:
        conn.close()


def hold_job_lock(conn: Any, job_id: int) -> None:
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, job_id])


@pytest.mark.postgres
def test_a_second_delivery_does_not_import_twice(
    admin_client: Client, project: Project, settings: Any, other_connection: Any
) -> None:
    job = queued_job(admin_client, project, jsonl_bytes(*pair_records(3)), settings)
    hold_job_lock(other_connection, job["id"])  # an execution of the job is under way
    busy = run_import_job(job["id"])
    assert not busy.ran
    assert not Prompt.objects.filter(project=project).exists()
    with other_connection.cursor() as cursor:  # that execution ended (without finishing)
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, job["id"]])
    first = run_import_job(job["id"])
    assert first.ran and first.status == "succeeded"
    second = run_import_job(job["id"])
    assert not second.ran and second.status == "succeeded"
    assert Batch.objects.filter(project=project).count() == 1
    assert Comparison.objects.filter(project=project).count() == 3
    assert Response.objects.filter(prompt__project=project).count() == 6


@pytest.mark.postgres
def test_a_running_job_whose_worker_is_gone_is_marked_failed_on_read(
    admin_client: Client, project: Project, settings: Any
) -> None:
    job = queued_job(admin_client, project, jsonl_bytes(*pair_records(2)), settings)
    ImportJob.objects.filter(pk=job["id"]).update(  # claimed by a worker that then died
        status=ImportJobStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    body = admin_client.get(url(project, f"{job['id']}/")).json()
    assert body["status"] == "failed"
    assert "worker" in body["error"]
    assert body["finished_at"] is not None
    late = run_import_job(job["id"])  # the broker redelivers the task afterwards
    assert not late.ran
    assert not Prompt.objects.filter(project=project).exists()


@pytest.mark.postgres
def test_a_running_job_whose_execution_is_alive_stays_running(
    admin_client: Client, project: Project, settings: Any, other_connection: Any
) -> None:
    job = queued_job(admin_client, project, jsonl_bytes(*pair_records(2)), settings)
    ImportJob.objects.filter(pk=job["id"]).update(
        status=ImportJobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(days=1)
    )
    hold_job_lock(other_connection, job["id"])
    assert admin_client.get(url(project, f"{job['id']}/")).json()["status"] == "running"
    assert admin_client.get(url(project)).json()["results"][0]["status"] == "running"


def test_without_advisory_locks_a_stale_heartbeat_marks_the_job_failed(
    admin_client: Client, project: Project, settings: Any, monkeypatch: Any
) -> None:
    """The SQLite rule (no advisory locks): the heartbeat's age decides."""
    monkeypatch.setattr(import_jobs, "_is_postgres", lambda: False)
    settings.PREFLAB_IMPORT_JOB_STALE_SECONDS = 60
    fresh = queued_job(admin_client, project, jsonl_bytes(*pair_records(1, prefix="f")), settings)
    stale = queued_job(admin_client, project, jsonl_bytes(*pair_records(1, prefix="s")), settings)
    now = timezone.now()
    ImportJob.objects.filter(pk=fresh["id"]).update(status="running", heartbeat_at=now)
    ImportJob.objects.filter(pk=stale["id"]).update(
        status="running", heartbeat_at=now - timedelta(seconds=61)
    )
    assert import_jobs.fail_lost_jobs(project_id=project.id) == 1
    assert ImportJob.objects.get(pk=fresh["id"]).status == "running"
    assert ImportJob.objects.get(pk=stale["id"]).status == "failed"
    assert not run_import_job(fresh["id"]).ran  # alive elsewhere: left alone


# --- a real worker ----------------------------------------------------------------------


@pytest.fixture
def import_worker(
    transactional_db: None, tmp_path: Path, artifact_root: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process reading the test database and the test's artifact root."""
    env = worker_env(ARTIFACT_ROOT=str(artifact_root))
    proc = start_worker(env, log=tmp_path / "worker.log")
    try:
        yield proc
    finally:
        stop_worker(proc)


FINAL = {"succeeded", "failed", "cancelled"}


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_queued_job_runs_on_a_real_worker_with_progress_up_to_one(
    import_worker: subprocess.Popen[bytes],
    project: Project,
    project_admin: Any,
    client: Client,
    settings: Any,
    artifact_root: Path,
) -> None:
    from annotation.tasks import run_import_job as task

    client.force_login(project_admin)
    job = queued_job(client, project, jsonl_bytes(*pair_records(7000)), settings)
    seen: list[float] = []

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(url(project, f"{job['id']}/")).json()
        seen.append(body["progress"])
        return body if body["status"] in FINAL else None

    body = wait_for("the import job to finish", finished, timeout=180, interval=0.05)
    assert body["status"] == "succeeded", body
    assert body["progress"] == 1.0 and body["bytes_read"] == body["size_bytes"]
    assert (body["prompts_created"], body["comparisons_created"]) == (7000, 7000)
    assert seen == sorted(seen)  # progress never goes back
    assert Comparison.objects.filter(project=project).count() == 7000
    assert not (artifact_root / ImportJob.objects.get(pk=job["id"]).folder / "upload").exists()

    duplicate = task.delay(job["id"]).get(timeout=60)  # the same task, delivered again
    assert duplicate == {"job_id": job["id"], "ran": False, "status": "succeeded"}
    assert Comparison.objects.filter(project=project).count() == 7000
    assert Batch.objects.filter(project=project).count() == 1


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_cancelling_a_running_job_after_chunks_were_written_leaves_nothing(
    import_worker: subprocess.Popen[bytes],
    project: Project,
    project_admin: Any,
    client: Client,
    settings: Any,
    other_connection: Any,
) -> None:
    """The worker writes the first chunk (2000 records) and then waits on a prompt another
    session is inserting (p3000, in chunk 2): the cancel arrives while the job is mid-way,
    with a chunk written; the job stops at its next chunk and nothing of it is kept."""
    client.force_login(project_admin)
    before = (Prompt.objects.count(), Batch.objects.count(), Comparison.objects.count())
    other_connection.ensure_connection()
    other_connection.set_autocommit(False)
    with other_connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO annotation_prompt (project_id, external_id, messages, metadata, "
            "created_at) VALUES (%s, 'p3000', '[]', '{}', now())",
            [project.id],
        )
    job = queued_job(client, project, jsonl_bytes(*pair_records(7000)), settings)

    def mid_way() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(url(project, f"{job['id']}/")).json()
        assert body["status"] not in FINAL, body
        return body if body["lines_read"] >= 4000 else None  # chunk 1 written, chunk 2 read

    progress = wait_for("the job to be mid-way", mid_way, timeout=120)["progress"]
    assert 0 < progress < 1
    cancelled = client.post(url(project, f"{job['id']}/cancel/"))
    assert cancelled.status_code == 200
    assert cancelled.json()["cancel_requested"] is True
    other_connection.rollback()  # the other session gives up its prompt: chunk 2 goes on

    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(url(project, f"{job['id']}/")).json()
        return body if body["status"] in FINAL else None

    body = wait_for("the cancel to take effect", done, timeout=120)
    assert body["status"] == "cancelled", body
    assert body["comparisons_created"] == 0 and body["batch_id"] is None
    after = (Prompt.objects.count(), Batch.objects.count(), Comparison.objects.count())
    assert after == before


def test_a_job_cancelled_between_its_read_and_its_start_is_not_imported(
    admin_client: Client, project: Project, settings: Any
) -> None:
    """The worker read the job as queued; the cancel landed before the worker marked it
    running: the start finds it cancelled and imports nothing."""
    job = queued_job(admin_client, project, jsonl_bytes(*pair_records(2)), settings)
    as_read = ImportJob.objects.select_related("project").get(pk=job["id"])
    admin_client.post(url(project, f"{job['id']}/cancel/"))
    import_jobs._execute(as_read)
    assert ImportJob.objects.get(pk=job["id"]).status == "cancelled"
    assert not Prompt.objects.filter(project=project).exists()
