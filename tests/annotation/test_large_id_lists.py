"""Large id lists and large imports fit the database's statement limits: lists are cut into
chunks read from the live connection (``preflab/db_chunks.py``), so a request naming 40,000
batch ids or an import of 40,000 records works on SQLite as on PostgreSQL. The SQLite tests
also run with the connection's variable limit lowered to 999, what SQLite before 3.32 allows,
where a single ``id__in=`` of an import chunk would not fit."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from annotation.export import create_export
from annotation.export_options import MAX_EXPORT_BATCHES, parse_export_options
from annotation.importing import CHUNK_RECORDS, ImportOptions, Pairing, import_comparisons
from annotation.models import Batch, BatchSource, Comparison, Project, Prompt, Response
from preflab.db_chunks import RESERVED, chunk_size, chunked, max_query_params
from tests.annotation import test_export
from tests.annotation.factories import pair_records, seed_pairs
from tests.sqlite_rerun import on_postgres, run_on_sqlite
from training.round_selectors import export_comparison_ids, export_judgments
from training.run_inputs import InvalidRunConfig, run_prompts

pytestmark = pytest.mark.django_db

judged = test_export.judged  # a project with 30 judged pairs in one batch
ROWS = 40_000  # batch ids in one request
LIMITS = [None, 999]  # the connection's own limit, and SQLite's before 3.32


@pytest.fixture(autouse=True)
def _artifacts(settings: Any, tmp_path: Path) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"


@contextmanager
def lowered_limit(limit: int | None) -> Iterator[int]:
    """The statement limit under test: on SQLite the live connection's limit lowered to
    ``limit``; the connection's own limit with ``None`` (or on PostgreSQL)."""
    if limit is None or connection.vendor != "sqlite":
        yield max_query_params()
        return
    connection.ensure_connection()
    raw = connection.connection
    before = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    try:
        yield limit
    finally:
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)


@pytest.fixture(params=LIMITS, ids=["own-limit", "limit-999"])
def variable_limit(request: pytest.FixtureRequest) -> Iterator[int]:
    if request.param is not None and connection.vendor != "sqlite":
        pytest.skip("only SQLite's variable limit can be lowered (on_sqlite reruns it there)")
    with lowered_limit(request.param) as limit:
        yield limit


@pytest.fixture
def lowest_limit() -> Iterator[int]:
    """999 on SQLite, PostgreSQL's own limit there."""
    with lowered_limit(999) as limit:
        yield limit


def test_chunks_follow_the_connections_limit(variable_limit: int) -> None:
    assert max_query_params() == variable_limit
    size = chunk_size()
    assert size == variable_limit - RESERVED
    assert chunk_size(lists=2) == (variable_limit - RESERVED) // 2
    chunks = list(chunked(range(3 * size + 5)))
    assert [len(c) for c in chunks] == [size, size, size, 5]
    assert [x for c in chunks for x in c] == list(range(3 * size + 5))
    assert list(chunked([], 10)) == []


def test_an_import_of_more_records_than_one_statement_holds(
    project: Project, lowest_limit: int
) -> None:
    rows = 2 * CHUNK_RECORDS + 2000  # three import chunks, each far beyond 999 variables
    lines = [json.dumps(r).encode() + b"\n" for r in pair_records(rows)]
    report = import_comparisons(
        project=project, stream=io.BytesIO(b"".join(lines)), options=ImportOptions()
    )
    assert report.records_imported == report.prompts_created == rows
    assert report.responses_created == 2 * rows
    assert report.comparisons_created == rows
    assert Comparison.objects.filter(project=project).count() == rows
    # more than a chunk of the same records again: every prompt and response is found
    again = import_comparisons(
        project=project,
        stream=io.BytesIO(b"".join(lines[: CHUNK_RECORDS + 1000])),
        options=ImportOptions(),
    )
    assert (again.prompts_created, again.responses_created) == (0, 0)
    assert again.records_imported == CHUNK_RECORDS + 1000
    assert Prompt.objects.filter(project=project).count() == rows
    assert Response.objects.filter(prompt__project=project).count() == 2 * rows


def test_an_import_chunk_naming_more_than_32766_responses(project: Project) -> None:
    """SQLite's default limit since 3.32 is 32,766 variables: one import chunk of 5,000
    records with 6 responses each looks up 5,000 prompts and 30,000 response hashes."""
    records = [
        {
            "id": f"r{i}",
            "prompt": f"Question {i}?",
            "responses": [f"answer {i}.{k}" for k in range(6)],
        }
        for i in range(CHUNK_RECORDS)
    ]
    lines = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    options = ImportOptions(pairing=Pairing.RANDOM_PAIRS, pairs_per_prompt=1)
    with lowered_limit(32_766):
        report = import_comparisons(project=project, stream=io.BytesIO(lines), options=options)
    assert report.records_imported == report.prompts_created == CHUNK_RECORDS
    assert report.responses_created == 6 * CHUNK_RECORDS
    assert report.comparisons_created == CHUNK_RECORDS


def test_40000_batch_ids_in_an_export_request_are_answered(
    judged: tuple[Project, list[Any]], project_admin: Any, client: Client, variable_limit: int
) -> None:
    project, _ = judged
    real = list(Batch.objects.filter(project=project).values_list("id", flat=True))
    missing = [10**12 + i for i in range(ROWS)]  # valid ids, no such batches
    client.force_login(project_admin)
    url = f"/api/projects/{project.id}/exports/"
    response = client.post(url, {"batches": real + missing}, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["code"] == "invalid_export"  # not request_too_large
    assert body["message"].startswith("Unknown batch id(s) in this project: [1000000000000, ")
    assert f"and {ROWS - 20} more" in body["message"] and len(body["message"]) < 500
    assert body["extra"]["unknown"] == ROWS


def test_an_export_of_more_batches_than_one_statement_holds(
    judged: tuple[Project, list[Any]], project_admin: Any, variable_limit: int
) -> None:
    project, _ = judged
    everything = create_export(
        project=project, options=parse_export_options({}), user=project_admin
    )
    empty = Batch.objects.bulk_create(
        Batch(project=project, name=f"empty {i}", source=BatchSource.IMPORT) for i in range(1_500)
    )
    ids = list(Batch.objects.filter(project=project).values_list("id", flat=True))
    assert len(ids) == len(empty) + 1
    named = create_export(
        project=project, options=parse_export_options({"batches": ids}), user=project_admin
    )
    assert (named.train_rows, named.test_rows) == (everything.train_rows, everything.test_rows)
    assert named.train_rows + named.test_rows > 0
    # naming only empty batches leaves nothing to export
    with pytest.raises(Exception, match="No comparison is left"):
        create_export(
            project=project,
            options=parse_export_options({"batches": [b.pk for b in empty]}),
            user=project_admin,
        )


def test_an_absurd_number_of_batch_ids_is_a_clear_400(
    project: Project, project_admin: Any, client: Client
) -> None:
    client.force_login(project_admin)
    ids = list(range(1, MAX_EXPORT_BATCHES + 2))
    response = client.post(
        f"/api/projects/{project.id}/exports/", {"batches": ids}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_export"
    assert f"at most {MAX_EXPORT_BATCHES} batches" in response.json()["message"]


def test_a_run_naming_more_prompts_than_one_statement_holds(
    project: Project, lowest_limit: int
) -> None:
    seed_pairs(project, 1_200)
    ids = sorted(Prompt.objects.filter(project=project).values_list("id", flat=True))
    assert run_prompts(project, list(reversed(ids))) == ids
    missing = [10**12 + i for i in range(ROWS)]
    with pytest.raises(InvalidRunConfig, match=f"{ROWS} prompt id") as caught:
        run_prompts(project, ids + missing)
    assert caught.value.extra["missing"] == missing[:20]


def test_the_judgments_behind_an_export_add_up_across_chunks(
    judged: tuple[Project, list[Any]], project_admin: Any
) -> None:
    """Counted one comparison per statement (on SQLite), the summary is the same."""
    project, users = judged
    export = create_export(project=project, options=parse_export_options({}), user=project_admin)
    whole = export_judgments(export)
    assert whole["count"] > 20 and whole["annotators"] == len(users)
    assert len(export_comparison_ids(export)) > 3
    with lowered_limit(3):
        assert chunk_size() == 1 or connection.vendor != "sqlite"
        assert export_judgments(export) == whole


@on_postgres
def test_the_lowered_limit_cases_pass_on_sqlite(tmp_path: Path) -> None:
    """The cases above that lower SQLite's variable limit are skipped on PostgreSQL: run
    them on SQLite too, so a PostgreSQL run (CI) checks them."""
    output = run_on_sqlite([__file__], tmp_path / "var", extra=("-k", "not on_sqlite"))
    assert " passed" in output and "skipped" not in output, output[-2000:]
