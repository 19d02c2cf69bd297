"""A project run from the browser end to end: a superuser creates a project, adds a member
with a new account, imports a file with a bad line, sees the error, imports the fixed file,
browses the comparisons; the member judges one; the admin finds that judgment in the data
browser and opens the annotator's page from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from annotation.models import Comparison, Judgment, Project, ProjectMembership
from tests.annotation.factories import pair_records
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEMBER_PASSWORD = "copper-Lantern-83-harbour"


def as_jsonl(rows: list[Any]) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def sign_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Your projects").wait_for()


def open_admin_link(page: Any, base: str, project: Project, name: str) -> None:
    """From the project's page, follow one of its administration links."""
    page.goto(f"{base}/projects/{project.id}")
    page.get_by_role("navigation", name="Project administration").get_by_role(
        "link", name=name, exact=True
    ).click()


def upload(page: Any, name: str, content: bytes) -> None:
    page.get_by_label("Import file").set_input_files(
        files=[{"name": name, "mimeType": "application/json", "buffer": content}]
    )
    page.get_by_role("button", name="Upload and import").click()


def test_create_add_import_fix_browse_annotate_and_inspect(
    live_server: Any,
    page: Any,
    browser: Any,
    django_user_model: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    base = live_server.url
    django_user_model.objects.create_superuser("root", "root@example.org", PASSWORD)

    # 1. create the project
    sign_in(page, base, "root", PASSWORD)
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Name").fill("Flow project")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("heading", name="Settings — Flow project").wait_for()
    project = Project.objects.get(name="Flow project")

    # 2. a member with a new account
    open_admin_link(page, base, project, "Members")
    page.get_by_role("heading", name="Members").wait_for()
    page.get_by_label("New account").check()
    form = page.get_by_role("form", name="Add a member")
    form.get_by_label("Username", exact=True).fill("maria")
    form.get_by_label("Password").fill(MEMBER_PASSWORD)
    form.get_by_role("button", name="Add member").click()
    page.get_by_label("Role of maria").wait_for()
    assert ProjectMembership.objects.get(project=project, user__username="maria").role == (
        "annotator"
    )

    # 3. a file with a bad line: the line is named, nothing is imported
    rows = pair_records(3)
    broken = as_jsonl([rows[0], rows[1], b'{"id": "p2", "prompt": ', rows[2]])
    open_admin_link(page, base, project, "Import data")
    upload(page, "pairs.jsonl", broken)
    bad = page.get_by_role("table", name="Bad lines")
    bad.wait_for()
    assert bad.get_by_role("row").nth(1).get_by_role("cell").nth(0).inner_text() == "3"
    assert Comparison.objects.filter(project=project).count() == 0

    # 4. the fixed file
    upload(page, "pairs-fixed.jsonl", as_jsonl(rows))
    page.get_by_text("Imported 3 comparisons").wait_for()
    assert Comparison.objects.filter(project=project).count() == 3

    # 5. browse the comparisons
    open_admin_link(page, base, project, "Browse data")
    comparisons = page.get_by_role("table", name="Comparisons")
    comparisons.wait_for()
    assert comparisons.get_by_role("row").count() == 1 + 3

    # 6. the member judges one comparison, in their own browser
    context = browser.new_context()
    try:
        member = context.new_page()
        sign_in(member, base, "maria", MEMBER_PASSWORD)
        member.get_by_role("link", name="Flow project", exact=True).click()
        member.get_by_role("link", name="Start annotating").click()
        member.get_by_role("region", name="Response 1").wait_for()
        member.keyboard.press("1")
        member.keyboard.press("w")
        member.keyboard.press("Enter")
        member.get_by_test_id("save-status").filter(has_text="Saved").wait_for(timeout=10_000)
    finally:
        context.close()
    judgment = Judgment.objects.get(project=project)
    assert judgment.annotator.username == "maria" and judgment.strength == 3

    # 7. the admin finds it among the judgments and opens the annotator's page
    open_admin_link(page, base, project, "Browse data")
    page.get_by_role("tab", name="Judgments").click()
    judgments = page.get_by_role("table", name="Judgments")
    judgments.wait_for()
    assert judgments.get_by_role("row").count() == 1 + 1
    judgments.get_by_role("link", name="maria").click()
    page.wait_for_url(f"**/projects/{project.id}/annotators/{judgment.annotator_id}")
    recent = page.get_by_role("table", name="Recent judgments")
    recent.wait_for()
    assert recent.get_by_role("row").count() == 1 + 1
