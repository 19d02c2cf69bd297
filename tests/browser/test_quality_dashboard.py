"""The quality dashboard renders for a project admin with data, and is refused to annotators."""

from __future__ import annotations

from typing import Any

import pytest

from annotation.models import Project
from annotation.quality import recompute_quality
from annotation.roles import Role
from annotation.services import set_membership
from tests.annotation.test_quality import judge, truth_of
from tests.browser.test_annotate import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def project_with_stats(project: Project, make_user: Any) -> Project:
    from tests.annotation.factories import seed_pairs

    seed_pairs(project, 30)
    users = [make_user(name) for name in ("ada", "bo", "cy", "speedy")]
    for user in users:
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
    judge(project, users, lambda i, lease: "left" if i == 3 else truth_of(lease))
    recompute_quality(project_id=project.id)
    return project


def test_dashboard_renders_for_an_admin(
    live_server: Any, page: Any, project_admin: Any, project_with_stats: Project
) -> None:
    log_in(page, live_server.url, "padmin", f"/projects/{project_with_stats.id}")
    page.get_by_role("link", name="Quality dashboard").click()
    page.wait_for_url(f"**/projects/{project_with_stats.id}/quality")
    page.get_by_role("img", name="Agreement over time").wait_for()
    assert page.get_by_role("img", name="Throughput").is_visible()
    table = page.get_by_role("table", name="Annotators")
    table.wait_for()
    assert table.get_by_role("row").count() == 1 + 4  # header + annotators
    assert table.get_by_text("speedy").is_visible()
    assert table.get_by_text("Too fast").first.is_visible()
    heatmap = page.get_by_label("Cohen's kappa heatmap")
    assert heatmap.first.is_visible()
    # no stray border under the last row: its row header (th) is borderless like its cells
    borders = page.eval_on_selector_all(
        "table tbody tr:last-child > *",
        "cells => cells.map(c => getComputedStyle(c).borderBottomWidth)",
    )
    assert borders and set(borders) == {"0px"}, borders
    page.screenshot(path=str(live_server_screenshot()), full_page=True)


def live_server_screenshot() -> Any:
    from django.conf import settings

    return settings.VAR_DIR / "quality-dashboard.png"


def test_dashboard_is_refused_to_an_annotator(
    live_server: Any, page: Any, annotator: Any, project_with_stats: Project
) -> None:
    log_in(page, live_server.url, "ann", f"/projects/{project_with_stats.id}/quality")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "project admin" in alert.inner_text()
    assert page.get_by_role("img", name="Agreement over time").count() == 0
    assert page.get_by_role("table", name="Annotators").count() == 0
