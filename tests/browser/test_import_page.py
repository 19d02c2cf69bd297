"""The import page: an admin uploads a file with a bad line, sees the line's number and
reason (nothing imported), downloads the bad lines, then uploads the fixed file and sees the
counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from annotation.models import Comparison, ImportJob, Project
from tests.annotation.factories import pair_records
from tests.browser.test_annotate import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def as_jsonl(rows: list[Any]) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def choose_file(page: Any, name: str, content: bytes) -> None:
    page.get_by_label("Import file").set_input_files(
        files=[{"name": name, "mimeType": "application/json", "buffer": content}]
    )


def test_admin_sees_the_bad_line_then_imports_the_fixed_file(
    live_server: Any,
    page: Any,
    project_admin: Any,
    project: Project,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    rows = pair_records(3)
    broken = as_jsonl([rows[0], b'{"id": "p1", "prompt": "Question p1?", "response_a": ', rows[2]])
    fixed = as_jsonl(rows)

    log_in(page, live_server.url, "padmin", f"/projects/{project.id}/import")
    page.get_by_role("heading", name=f"Import comparisons: {project.name}").wait_for()

    choose_file(page, "pairs.jsonl", broken)
    page.get_by_role("button", name="Upload and import").click()
    table = page.get_by_role("table", name="Bad lines")
    table.wait_for()
    cells = table.get_by_role("row").nth(1).get_by_role("cell")
    assert cells.nth(0).inner_text() == "2"
    assert "invalid JSON" in cells.nth(1).inner_text()
    assert "line 2" in page.get_by_role("alert").inner_text()
    assert Comparison.objects.filter(project=project).count() == 0

    with page.expect_download() as download:
        page.get_by_role("link", name="Download bad lines").click()
    saved = Path(download.value.path()).read_text()
    bad = [json.loads(line) for line in saved.splitlines()]
    assert [(b["line"], b["raw"]) for b in bad] == [(2, broken.splitlines()[1].decode())]

    choose_file(page, "pairs-fixed.jsonl", fixed)
    page.get_by_role("button", name="Upload and import").click()
    page.get_by_text("Imported 3 comparisons").wait_for()
    counts = page.get_by_label("Import counts")
    assert counts.get_by_text("Comparisons created").locator("xpath=..").inner_text().endswith("3")
    assert page.get_by_role("table", name="Bad lines").count() == 0
    assert Comparison.objects.filter(project=project).count() == 3

    history = page.get_by_role("table", name="Import jobs")
    history.get_by_text("pairs-fixed.jsonl").wait_for()
    assert history.get_by_role("row").count() == 1 + 2  # header + both uploads
    statuses = list(ImportJob.objects.filter(project=project).values_list("status", flat=True))
    assert statuses == ["succeeded", "failed"]  # newest first
