"""A superuser sets up a project in the browser (create, settings with the instructions
preview, a member, an invite link), and a newcomer joins through the link in a fresh
browser by creating an account."""

from __future__ import annotations

from typing import Any

import pytest

from annotation.models import Project, ProjectInvite, ProjectMembership
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "amber-Kettle-57-meadow"


def test_superuser_sets_up_a_project_and_a_newcomer_joins_by_invite(
    live_server: Any, page: Any, browser: Any, make_user: Any, django_user_model: Any
) -> None:
    django_user_model.objects.create_superuser("root", "root@example.org", PASSWORD)
    make_user("ann")

    # sign in and create the project
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Name").fill("Browser project")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("heading", name="Settings — Browser project").wait_for()
    project = Project.objects.get(name="Browser project")
    assert ProjectMembership.objects.get(project=project).role == "project_admin"

    # settings: the instructions' preview follows the text as it is typed
    page.get_by_label("Instructions (markdown)").fill(
        "## How to judge\n\nPrefer **helpful** answers."
    )
    preview = page.get_by_role("region", name="Instructions preview")
    preview.get_by_role("heading", name="How to judge").wait_for()
    assert preview.locator("strong").inner_text() == "helpful"
    page.get_by_label("Judgments per comparison (k)").fill("2")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved.").wait_for()
    project.refresh_from_db()
    assert (project.overlap_k, project.instructions.startswith("## How to judge")) == (2, True)

    # members: add an existing user
    page.get_by_role("link", name="Members and invites").click()
    page.get_by_role("heading", name="Members").wait_for()
    page.get_by_label("Username or email").fill("ann")
    page.get_by_role("button", name="Add member").click()
    page.get_by_label("Role of ann").wait_for()
    assert ProjectMembership.objects.get(project=project, user__username="ann").role == "annotator"

    # an invite link for one annotator
    page.get_by_role("button", name="Create invite link").click()
    link = page.get_by_label("Invite link", exact=True)
    link.wait_for()
    url = link.input_value()
    assert url.startswith(f"{live_server.url}/invites/")
    assert ProjectInvite.objects.filter(project=project, used_at__isnull=True).count() == 1

    # a fresh browser, nobody signed in: create an account from the link and land in the project
    context = browser.new_context()
    try:
        visitor = context.new_page()
        visitor.goto(url)
        visitor.get_by_role("heading", name="Join Browser project").wait_for()
        visitor.get_by_label("Username").fill("newcomer")
        visitor.get_by_label("Password").fill(NEW_PASSWORD)
        visitor.get_by_role("button", name="Create account and join").click()
        visitor.wait_for_url(f"**/projects/{project.id}")
        visitor.get_by_role("heading", name="Browser project").wait_for()
        visitor.get_by_role("link", name="Start annotating").wait_for()
        visitor.get_by_text("newcomer").first.wait_for()
    finally:
        context.close()
    membership = ProjectMembership.objects.get(project=project, user__username="newcomer")
    assert membership.role == "annotator"
    assert ProjectInvite.objects.get(project=project).used_by == membership.user
