"""A browser can log in with a demo login and see its projects."""

from __future__ import annotations

from typing import Any

import pytest

from annotation.models import Project
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_then_your_projects(
    live_server: Any, page: Any, annotator: Any, project: Project
) -> None:
    page.goto(f"{live_server.url}/projects")
    page.wait_for_url("**/login**")
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Your projects").wait_for()
    link = page.get_by_role("link", name=project.name, exact=True)
    link.wait_for()
    assert link.get_attribute("href") == f"/projects/{project.id}"
    assert page.get_by_text("ann").first.is_visible()


def test_wrong_password_shows_the_server_message(
    live_server: Any, page: Any, annotator: Any
) -> None:
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Wrong username or password.").wait_for()
