"""The data browser in a real browser: list comparisons, open one, read its history."""

from __future__ import annotations

from typing import Any

import pytest

from annotation import queue
from annotation.models import Project
from annotation.roles import Role
from annotation.services import set_membership
from tests.annotation.factories import seed_pairs
from tests.browser.test_annotate import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_browses_comparisons_and_opens_one_with_its_history(
    live_server: Any, page: Any, project_admin: Any, project: Project, make_user: Any
) -> None:
    seed_pairs(project, 3)
    judged = []
    users = {}
    for name in ("ada", "bo"):
        user = users[name] = make_user(name)
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
        lease = queue.lease_next(project_id=project.id, user=user)
        assert lease is not None
        queue.submit_judgment(
            project_id=project.id,
            assignment_id=lease.id,
            user=user,
            data=queue.JudgmentInput(choice="left", strength=4, rationale=f"{name} <b>says</b>"),
        )
        judged.append(lease.comparison_id)
    comparison_id = judged[0]

    log_in(page, live_server.url, "padmin", f"/projects/{project.id}/data")
    table = page.get_by_role("table", name="Comparisons")
    table.wait_for()
    assert table.get_by_role("row").count() == 1 + 3
    table.get_by_role("button", name=str(comparison_id), exact=True).click()
    detail = page.get_by_role("article", name=f"Comparison {comparison_id}")
    detail.wait_for()
    assert detail.get_by_role("region", name="Response A").is_visible()
    assert detail.get_by_role("region", name="Response B").is_visible()
    history = detail.get_by_role("table", name="Judgment history")
    names = {"ada", "bo"} if judged[0] == judged[1] else {"ada"}
    assert history.get_by_role("row").count() == 1 + len(names)
    assert history.get_by_text("ada <b>says</b>").is_visible()  # a rationale is shown as text
    link = history.get_by_role("link", name="ada")
    assert link.get_attribute("href") == f"/projects/{project.id}/annotators/{users['ada'].id}"
    page.get_by_role("button", name="← Back to the list").click()
    page.get_by_role("tab", name="Judgments").click()
    judgments = page.get_by_role("table", name="Judgments")
    judgments.wait_for()
    assert judgments.get_by_role("row").count() == 1 + 2
