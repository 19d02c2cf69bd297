"""The annotator's page at phone and laptop sizes (the decision bar is on screen without
scrolling, even with long responses) and a submit refused because the session ended (kept,
then sent after logging in again) — in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.sessions.models import Session

from annotation.importing import ImportOptions, import_comparisons
from annotation.models import Judgment, Project
from tests.annotation.factories import jsonl, seed_pairs
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
LAPTOP = {"viewport": {"width": 1440, "height": 900}}
SENTENCE = "a fairly long sentence that wraps. "
LONG = "\n\n".join(f"Paragraph {i}: " + SENTENCE * 6 for i in range(40))


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context of the given size; page errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert errors == [], f"page errors: {errors}"


def log_in(page: Any, base: str, then: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Your projects").wait_for()
    page.goto(f"{base}{then}")


def long_pairs(project: Project, n: int) -> None:
    records = [
        {"id": f"long{i}", "prompt": f"Essay {i}?", "response_a": LONG, "response_b": LONG + "!"}
        for i in range(n)
    ]
    import_comparisons(project=project, stream=jsonl(*records), options=ImportOptions())


def inside_viewport(page: Any, locator: Any) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return (
        box is not None
        and box["y"] >= 0
        and box["x"] >= 0
        and box["y"] + box["height"] <= size["height"]
        and box["x"] + box["width"] <= size["width"]
    )


def current_assignment(page: Any) -> int:
    item = page.locator("[data-assignment-id]").first
    item.wait_for()
    return int(item.get_attribute("data-assignment-id"))


def choose_and_strength(page: Any, choice: str, tap: bool) -> None:
    button = page.get_by_role("button", name=choice)
    button.tap() if tap else button.click()
    strength = page.get_by_role("button", name="Better", exact=True)
    if strength.count():
        strength.tap() if tap else strength.click()


def test_on_a_phone_the_responses_are_tabs_and_submit_is_on_screen(
    live_server: Any, open_page: Any, annotator: Any, project: Project
) -> None:
    long_pairs(project, 2)
    page = open_page(**PHONE)
    log_in(page, live_server.url, f"/projects/{project.id}/annotate")
    assignment = current_assignment(page)
    tabs = page.get_by_role("tab")
    assert tabs.all_inner_texts() == ["Response 1", "Response 2"]
    # the page is taller than the screen, and the decision bar is on it without scrolling
    assert page.evaluate("document.documentElement.scrollHeight") > 844 * 2
    submit = page.get_by_role("button", name="Submit")
    choice = page.get_by_role("button", name="Response 2 is better")
    assert inside_viewport(page, submit) and inside_viewport(page, choice)
    # the second response is a tab away; the choice buttons name the response they mean
    tabs.nth(1).tap()
    assert page.get_by_role("tab", name="Response 2").get_attribute("aria-selected") == "true"
    choose_and_strength(page, "Response 2 is better", tap=True)
    assert inside_viewport(page, submit)
    assert not page.locator(".key-hint").first.is_visible()  # no keyboard hints on a phone
    submit.tap()
    page.wait_for_function(
        'id => !document.querySelector(`[data-assignment-id="${id}"]`)', arg=assignment
    )
    page.get_by_test_id("save-status").filter(has_text="Saved").wait_for(timeout=10_000)
    judgment = Judgment.objects.get(assignment_id=assignment)
    assert judgment.choice == ("A" if judgment.swapped else "B")
    # the next item starts at the top
    assert page.evaluate("window.scrollY") == 0


def test_on_a_laptop_the_decision_bar_is_on_screen_without_scrolling(
    live_server: Any, open_page: Any, annotator: Any, project: Project
) -> None:
    long_pairs(project, 1)
    page = open_page(**LAPTOP)
    log_in(page, live_server.url, f"/projects/{project.id}/annotate")
    current_assignment(page)
    assert page.evaluate("document.documentElement.scrollHeight") > 900 * 2
    for name in ("Submit", "Left is better", "Right is better"):
        assert inside_viewport(page, page.get_by_role("button", name=name)), name


def test_a_submit_refused_because_the_session_ended_is_sent_after_logging_in(
    live_server: Any, open_page: Any, annotator: Any, project: Project
) -> None:
    seed_pairs(project, 3)
    page = open_page(**LAPTOP)
    log_in(page, live_server.url, f"/projects/{project.id}/annotate")
    assignment = current_assignment(page)
    choose_and_strength(page, "Left is better", tap=False)
    Session.objects.all().delete()  # the session ends (expired, or logged out elsewhere)
    page.get_by_role("button", name="Submit").click()

    page.get_by_role("heading", name="Your session has ended").wait_for()
    assert not Judgment.objects.filter(assignment_id=assignment).exists()
    page.get_by_role("button", name="Log in again").click()
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # back on the same page (no reload): the kept answer goes first
    page.get_by_test_id("save-status").filter(has_text="Saved").wait_for(timeout=10_000)
    judgment = Judgment.objects.get(assignment_id=assignment)
    assert judgment.choice == ("B" if judgment.swapped else "A")
    assert judgment.strength == 3
    # and the page carries on with another item
    assert current_assignment(page) != assignment
