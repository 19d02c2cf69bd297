"""The annotator's page in headless Chromium: keyboard-only judging, sanitized responses."""

from __future__ import annotations

from typing import Any

import pytest

from annotation.models import Judgment, Project
from tests.annotation.factories import jsonl, seed_pairs
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page: Any, base: str, username: str, then: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Your projects").wait_for()
    page.goto(f"{base}{then}")


def current_assignment(page: Any) -> int:
    item = page.locator("[data-assignment-id]").first
    item.wait_for()
    return int(item.get_attribute("data-assignment-id"))


def test_judge_three_comparisons_with_the_keyboard_only(
    live_server: Any, page: Any, annotator: Any, project: Project
) -> None:
    seed_pairs(project, 5)
    log_in(page, live_server.url, "ann", f"/projects/{project.id}/annotate")
    keys = [("1", "q", "left", 4), ("2", "w", "right", 3), ("ArrowLeft", "r", "left", 1)]
    seen = []
    for choice_key, strength_key, _, _ in keys:
        assignment = current_assignment(page)
        seen.append(assignment)
        page.get_by_role("region", name="Response 1").wait_for()
        page.keyboard.press(choice_key)
        page.keyboard.press(strength_key)
        page.keyboard.press("Enter")
        page.wait_for_function(
            'id => !document.querySelector(`[data-assignment-id="${id}"]`)', arg=assignment
        )
    page.get_by_test_id("save-status").filter(has_text="Saved").wait_for(timeout=10_000)
    assert len(set(seen)) == 3
    judgments = {j.assignment_id: j for j in Judgment.objects.filter(annotator=annotator)}
    assert set(judgments) == set(seen)
    for assignment_id, (_, _, display, strength) in zip(seen, keys, strict=True):
        judgment = judgments[assignment_id]
        expected = (
            {"left": "B", "right": "A"}[display]
            if judgment.swapped
            else ({"left": "A", "right": "B"}[display])
        )
        assert judgment.choice == expected
        assert judgment.strength == strength
        assert judgment.time_taken_ms is not None


XSS = (
    "Here is my answer.\n\n<script>window.__xss = 'script'</script>\n\n"
    '<img src="x" onerror="window.__xss = \'onerror\'">\n\n'
    "[click me](javascript:window.__xss='link')\n\n```python\nprint('safe code')\n```"
)


def test_script_and_onerror_in_a_response_do_not_execute(
    live_server: Any, page: Any, annotator: Any, project: Project
) -> None:
    from annotation.importing import ImportOptions, import_comparisons

    import_comparisons(
        project=project,
        stream=jsonl(
            {
                "id": "xss",
                "prompt": "Say hi",
                "response_a": XSS,
                "response_b": "<b>bold</b> and <iframe src='/admin/'></iframe>",
            }
        ),
        options=ImportOptions(),
    )
    log_in(page, live_server.url, "ann", f"/projects/{project.id}/annotate")
    pane = page.get_by_role("region", name="Response 1")
    pane.wait_for()
    page.get_by_text("Here is my answer.").wait_for()
    page.wait_for_timeout(500)  # give any injected handler the chance to fire
    assert page.evaluate("window.__xss") is None
    html = page.locator("[data-assignment-id]").inner_html()
    assert "<script" not in html
    assert "onerror" not in html
    assert "javascript:" not in html
    assert "<iframe" not in html
    assert page.locator("code.hljs, pre code[class*='hljs']").count() >= 1
    page.get_by_text("click me").click()
    assert page.evaluate("window.__xss") is None
