"""Import: three shapes, pairing strategies, atomic validation with line numbers, no duplicates."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from annotation.importing import (
    ImportOptions,
    ImportRejected,
    Pairing,
    import_comparisons,
    pair_indices,
)
from annotation.models import Batch, Comparison, Project, Prompt, Response
from tests.annotation.factories import jsonl, pair_records

pytestmark = pytest.mark.django_db

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And times 3?"},
]


def run(project: Project, stream: io.BytesIO, **options: Any) -> Any:
    return import_comparisons(project=project, stream=stream, options=ImportOptions(**options))


def test_candidates_shape_with_all_pairs(project: Project) -> None:
    report = run(
        project,
        jsonl(
            {
                "id": "q1",
                "prompt": CONVERSATION,
                "responses": ["12.", "It is 12.", {"content": "6"}],
            }
        ),
    )
    assert (report.prompts_created, report.responses_created, report.comparisons_created) == (
        1,
        3,
        3,
    )
    prompt = Prompt.objects.get(project=project, external_id="q1")
    assert prompt.messages == CONVERSATION
    for c in Comparison.objects.filter(project=project):
        assert c.response_a_id < c.response_b_id
        assert c.target_votes == project.overlap_k


def test_pairing_strategies() -> None:
    assert pair_indices(4, ImportOptions(pairing=Pairing.ADJACENT), "k") == [(0, 1), (1, 2), (2, 3)]
    assert len(pair_indices(4, ImportOptions(pairing=Pairing.ALL_PAIRS), "k")) == 6
    random_opts = ImportOptions(pairing=Pairing.RANDOM_PAIRS, pairs_per_prompt=2, seed=7)
    first = pair_indices(5, random_opts, "k")
    assert len(first) == 2 and first == pair_indices(5, random_opts, "k")
    assert all(i < j for i, j in first)


def test_explicit_pair_with_gold_keeps_gold_in_canonical_terms(project: Project) -> None:
    run(
        project,
        jsonl({"id": "g", "prompt": "Pick", "response_a": "zzz", "response_b": "aaa", "gold": "A"}),
    )
    c = Comparison.objects.get(project=project)
    assert c.is_gold
    gold_text = c.response_a.content if c.gold_choice == "A" else c.response_b.content
    assert gold_text == "zzz"


def test_trl_rows_standard_and_conversational(project: Project) -> None:
    report = run(
        project,
        jsonl(
            {"prompt": "Sort a list", "chosen": "sorted(xs)", "rejected": "no"},
            {
                "prompt": [{"role": "user", "content": "Hi"}],
                "chosen": [{"role": "assistant", "content": "Hello!"}],
                "rejected": [{"role": "assistant", "content": "Go away."}],
            },
        ),
    )
    assert report.comparisons_created == 2
    labels = set(Response.objects.values_list("metadata__trl_label", flat=True))
    assert labels == {"chosen", "rejected"}


def test_json_array_is_accepted(project: Project) -> None:
    data = json.dumps(pair_records(3), indent=2).encode()
    assert run(project, io.BytesIO(data)).comparisons_created == 3


def test_reimport_does_not_duplicate(project: Project) -> None:
    rows = pair_records(5)
    run(project, jsonl(*rows))
    again = run(project, jsonl(*rows))
    assert again.comparisons_created == 0
    assert again.comparisons_existing == 5
    assert again.prompts_created == 0 and again.responses_created == 0
    assert Comparison.objects.filter(project=project).count() == 5
    assert Prompt.objects.filter(project=project).count() == 5


def test_bad_lines_reject_the_whole_import_with_every_line_number(project: Project) -> None:
    rows: list[Any] = pair_records(3)
    stream = jsonl(
        rows[0],
        b"{not json",
        {"id": "x", "prompt": "", "response_a": "a", "response_b": "b"},
        rows[1],
        b"\xff\xfe garbage",
        {"id": "y", "prompt": "q", "response_a": "same", "response_b": "same"},
        {"id": "z", "prompt": "q", "response_a": "a", "response_b": "b", "gold": "left"},
        [1, 2],
        {"id": "w", "prompt": [{"role": "bot", "content": "x"}], "responses": ["a", "b"]},
        {"id": "p0", "prompt": "dup id", "response_a": "a", "response_b": "b"},
        rows[2],
    )
    with pytest.raises(ImportRejected) as caught:
        run(project, stream)
    bad = {b["line"]: b["message"] for b in caught.value.extra["bad_lines"]}
    assert sorted(bad) == [2, 3, 5, 6, 7, 8, 9, 10]
    assert bad[2].startswith("invalid JSON")
    assert "'prompt' is empty" in bad[3]
    assert "UTF-8" in bad[5]
    assert "identical" in bad[6]
    assert "'gold'" in bad[7]
    assert "expected a JSON object" in bad[8]
    assert "role" in bad[9]
    assert "duplicate id 'p0' (first on line 1)" in bad[10]
    assert Comparison.objects.count() == 0
    assert Prompt.objects.count() == 0
    assert Batch.objects.count() == 0


def test_skip_bad_lines_imports_the_good_ones_and_lists_the_bad(project: Project) -> None:
    rows = pair_records(2)
    report = run(project, jsonl(rows[0], b"[", rows[1]), skip_bad_lines=True)
    assert report.comparisons_created == 2
    assert [(b.line, b.message[:12]) for b in report.bad_lines] == [(2, "invalid JSON")]


def test_empty_file_is_rejected(project: Project) -> None:
    with pytest.raises(ImportRejected, match="no records"):
        run(project, io.BytesIO(b"\n\n"))


def test_api_upload_by_project_admin(client: Client, project: Project, project_admin: Any) -> None:
    client.force_login(project_admin)
    upload = io.BytesIO(jsonl(*pair_records(4)).getvalue())
    upload.name = "pairs.jsonl"
    response = client.post(f"/api/projects/{project.id}/imports/", {"file": upload})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["comparisons_created"] == 4
    assert Batch.objects.get(pk=body["batch_id"]).comparison_count == 4


def test_api_upload_with_bad_line_is_a_400_with_the_line(
    client: Client, project: Project, project_admin: Any
) -> None:
    client.force_login(project_admin)
    upload = io.BytesIO(jsonl(pair_records(1)[0], b'{"id": 3}').getvalue())
    upload.name = "bad.jsonl"
    response = client.post(f"/api/projects/{project.id}/imports/", {"file": upload})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_import"
    assert body["extra"]["bad_lines"] == [{"line": 2, "message": "missing 'prompt'"}]
    assert Comparison.objects.count() == 0


@pytest.mark.parametrize("role_fixture", ["annotator", "ml_engineer"])
def test_api_upload_is_refused_to_other_roles(
    client: Client, project: Project, role_fixture: str, request: pytest.FixtureRequest
) -> None:
    client.force_login(request.getfixturevalue(role_fixture))
    upload = io.BytesIO(jsonl(*pair_records(1)).getvalue())
    upload.name = "x.jsonl"
    response = client.post(f"/api/projects/{project.id}/imports/", {"file": upload})
    assert response.status_code == 403
    assert Comparison.objects.count() == 0


def test_admin_of_another_project_cannot_import_here(
    client: Client, project: Project, other_project: Project, make_user: Any
) -> None:
    from annotation.services import set_membership

    other_admin = make_user("other-admin")
    set_membership(project=other_project, user=other_admin, role="project_admin")
    client.force_login(other_admin)
    upload = io.BytesIO(jsonl(*pair_records(1)).getvalue())
    upload.name = "x.jsonl"
    assert client.post(f"/api/projects/{project.id}/imports/", {"file": upload}).status_code == 403


def test_management_command(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(jsonl(*pair_records(3)).getvalue())
    out = io.StringIO()
    call_command("import_comparisons", str(project.id), str(path), stdout=out)
    assert json.loads(out.getvalue())["comparisons_created"] == 3
    path.write_bytes(b'{"id": 1}\n')
    with pytest.raises(CommandError, match="1 bad line"):
        call_command("import_comparisons", str(project.id), str(path), stderr=io.StringIO())


def test_demo_file_imports_cleanly(project: Project) -> None:
    demo = Path(__file__).resolve().parents[2] / "annotation" / "demo_data" / "demo_prompts.jsonl"
    with demo.open("rb") as stream:
        report = run(project, stream)  # type: ignore[arg-type]
    assert report.prompts_created == 30
    assert report.comparisons_created == 90
    assert report.bad_line_count == 0


def test_reimport_with_new_and_known_prompts_mixed(project: Project) -> None:
    rows = pair_records(6)
    run(project, jsonl(*rows[:3]))
    extra = {
        "id": "p1",
        "prompt": "Question p1?",
        "responses": ["Answer one to p1.", "Answer two to p1.", "A third answer to p1."],
    }
    report = run(project, jsonl(*rows[3:], extra))
    assert report.prompts_created == 3
    assert report.responses_created == 2 * 3 + 1  # three new prompts, one new answer to p1
    assert report.comparisons_created == 3 + 2  # p1 gains two pairs with its third answer
    assert report.comparisons_existing == 1
    assert Comparison.objects.filter(project=project).count() == 8


def test_deleting_a_project_cascades_through_the_bulk_tables(
    project: Project, other_project: Project
) -> None:
    run(project, jsonl(*pair_records(4)))
    run(other_project, jsonl(*pair_records(2)))
    project.delete()
    assert Prompt.objects.filter(project_id=project.id).count() == 0
    assert Comparison.objects.filter(project_id=project.id).count() == 0
    assert Batch.objects.filter(project_id=project.id).count() == 0
    # nothing orphaned, the other project untouched
    assert Response.objects.count() == 4
    assert not Response.objects.exclude(prompt__in=Prompt.objects.all()).exists()
    assert Comparison.objects.filter(project=other_project).count() == 2


def test_a_batch_with_comparisons_cannot_be_deleted_alone(project: Project) -> None:
    from django.db.models import RestrictedError

    report = run(project, jsonl(*pair_records(2)))
    with pytest.raises(RestrictedError):
        Batch.objects.get(pk=report.batch_id).delete()


def test_api_upload_over_the_size_limit_is_a_413(
    client: Client, project: Project, project_admin: Any, settings: Any
) -> None:
    settings.PREFLAB_MAX_IMPORT_BYTES = 100
    client.force_login(project_admin)
    upload = io.BytesIO(jsonl(*pair_records(5)).getvalue())
    upload.name = "big.jsonl"
    response = client.post(f"/api/projects/{project.id}/imports/", {"file": upload})
    assert response.status_code == 413
    assert response.json()["code"] == "upload_too_large"
    assert response.json()["extra"] == {"limit_bytes": 100}
    assert Comparison.objects.count() == 0
