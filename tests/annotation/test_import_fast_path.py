"""PostgreSQL's fast publishing path (COPY, ids drawn ahead, writes in flight while the next
chunk is read) writes exactly the rows of the ORM path, the reference that SQLite runs, for
a file with every tricky case; and its writes in flight are seen by whatever queries next."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import IntegrityError, connection
from psycopg import errors as pg_errors

import annotation.importing as importing
import annotation.publishing as publishing
from annotation.comparison_specs import PromptComparisons, ResponseSpec
from annotation.importing import ImportOptions, ImportRejected, import_comparisons
from annotation.models import Batch, BatchSource, Comparison, Project, Prompt, Response
from annotation.publish_sql import _next_ids
from annotation.services import create_project
from tests.annotation.factories import jsonl

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's"),
]

CONVERSATION = [
    {"role": "system", "content": "Be\tterse.\\n"},
    {"role": "user", "content": "Line one\nline two\r\nand a back\\slash"},
]

FIRST_FILE: list[Any] = [
    {"id": "cands", "prompt": CONVERSATION, "responses": ["x", "y\tz", "x", {"content": "w"}]},
    {"id": 7, "prompt": "int id", "response_a": "a\\b", "response_b": "c", "gold": "A"},
    {"id": "goldB", "prompt": "q", "response_a": "zz", "response_b": "aa", "gold": "B"},
    {"id": "tie", "prompt": "q", "response_a": "m", "response_b": "n", "gold": "tie"},
    {"prompt": "no id: keyed by a hash of the messages", "chosen": "yes", "rejected": "no"},
    {
        "id": "trl-conv",
        "prompt": [{"role": "user", "content": "hi"}],
        "chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        "rejected": [{"role": "assistant", "content": "go away"}],
        "metadata": {"src": "tab\there", "path": "C:\\dir", "ü": ["é", 1, None]},
    },
    b"{not json",
    {"id": "bad", "prompt": "q", "response_a": "same", "response_b": "same"},
    {"id": "cands", "prompt": "duplicate id", "response_a": "1", "response_b": "2"},
    {"id": "meta", "prompt": "q", "responses": [{"content": "r1", "metadata": {"k": "v\\"}}, "r2"]},
    {"id": "emoji", "prompt": "🙂 \u200b", "responses": ["🙂", "🙃", "\u00e9t\u00e9"]},
]

SECOND_FILE: list[Any] = [  # a re-import: known prompts, new answers to them, new prompts
    {"id": "cands", "prompt": CONVERSATION, "responses": ["x", "v", "w"]},
    {"id": 7, "prompt": "int id", "response_a": "c", "response_b": "a\\b", "gold": "B"},
    {"id": "new", "prompt": "new prompt", "response_a": "p", "response_b": "q"},
    {"id": "goldB", "prompt": "q", "response_a": "zz", "response_b": "aa", "gold": "B"},
]


def snapshot(project: Project) -> dict[str, Any]:
    """Everything the import wrote to ``project``, by content (ids differ between projects)."""
    prompts = {p.id: p.external_id for p in Prompt.objects.filter(project=project)}
    responses = {
        r.id: r for r in Response.objects.filter(prompt__project=project).select_related("prompt")
    }
    comparisons = []
    for c in Comparison.objects.filter(project=project).select_related("batch"):
        assert c.response_a_id < c.response_b_id
        a, b = responses[c.response_a_id], responses[c.response_b_id]
        assert a.prompt_id == b.prompt_id == c.prompt_id
        comparisons.append(
            (
                c.batch.name,
                prompts[c.prompt_id],
                a.content,
                b.content,
                c.gold_choice,
                c.is_gold,
                c.target_votes,
                c.judgment_count,
                c.lease_count,
            )
        )
    return {
        "prompts": sorted(
            (p.external_id, p.messages, p.metadata) for p in Prompt.objects.filter(project=project)
        ),
        "responses": sorted(
            (
                prompts[r.prompt_id],
                r.content,
                r.content_hash,
                r.source,
                r.model_artifact_id,
                r.round_number,
                r.metadata,
            )
            for r in responses.values()
        ),
        "comparisons": sorted(comparisons),
        "batches": sorted(
            (b.name, b.source, b.comparison_count, b.metadata)
            for b in Batch.objects.filter(project=project)
        ),
    }


def import_both_files(project: Project) -> list[dict[str, Any]]:
    reports = []
    for name, records in (("first", FIRST_FILE), ("second", SECOND_FILE)):
        report = import_comparisons(
            project=project,
            stream=jsonl(*records),
            options=ImportOptions(skip_bad_lines=True, batch_name=name),
        )
        reports.append(report.as_dict() | {"batch_id": None})
    return reports


@pytest.mark.parametrize("chunk_records", [2, 5000])
def test_fast_path_writes_the_rows_of_the_orm_path(
    monkeypatch: pytest.MonkeyPatch, chunk_records: int
) -> None:
    monkeypatch.setattr(importing, "CHUNK_RECORDS", chunk_records)
    fast = create_project(name="fast", overlap_k=3)
    fast_reports = import_both_files(fast)
    monkeypatch.setattr(publishing, "supports_fast_path", lambda: False)
    reference = create_project(name="reference", overlap_k=3)
    reference_reports = import_both_files(reference)

    assert fast_reports == reference_reports
    assert [r["bad_line_count"] for r in fast_reports] == [3, 0]
    assert [(b["line"], b["message"][:12]) for b in fast_reports[0]["bad_lines"]] == [
        (7, "invalid JSON"),
        (8, "response_a a"),
        (9, "duplicate id"),
    ]
    assert snapshot(fast) == snapshot(reference)
    # and the numbers that matter, spelled out
    assert fast_reports[0]["comparisons_created"] == 3 + 1 + 1 + 1 + 1 + 1 + 1 + 3
    assert fast_reports[1]["prompts_created"] == 1
    assert fast_reports[1]["comparisons_existing"] == 3  # x-w, 7's pair, goldB's pair
    assert Comparison.objects.filter(project=fast, is_gold=True).count() == 3


def test_a_bad_line_still_imports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "CHUNK_RECORDS", 2)
    project = create_project(name="strict")
    with pytest.raises(ImportRejected) as caught:
        import_comparisons(project=project, stream=jsonl(*FIRST_FILE), options=ImportOptions())
    assert [b["line"] for b in caught.value.extra["bad_lines"]] == [7, 8, 9]
    assert not Prompt.objects.filter(project=project).exists()
    assert not Response.objects.filter(prompt__project=project).exists()
    assert not Batch.objects.filter(project=project).exists()


def test_every_query_between_chunks_sees_the_chunks_before(project: Project) -> None:
    """A caller's code run between chunks (here: a count) waits for the writes in flight."""
    seen: list[int] = []

    def item(n: int) -> PromptComparisons:
        responses = [ResponseSpec(f"first {n}"), ResponseSpec(f"second {n}")]
        messages = [{"role": "user", "content": "q"}]
        return PromptComparisons(f"k{n}", messages, {}, responses, [(0, 1, "")])

    def chunks() -> Iterator[list[PromptComparisons]]:
        for start in range(0, 12, 4):
            seen.append(Response.objects.filter(prompt__project=project).count())
            yield [item(n) for n in range(start, start + 4)]
        seen.append(Response.objects.filter(prompt__project=project).count())

    published = publishing.publish_comparisons(
        project=project, source=BatchSource.IMPORT, name="between", chunks=chunks()
    )
    assert seen == [0, 8, 16, 24]
    assert published.comparisons_created == 12
    assert published.batch.comparison_count == 12


def test_a_key_repeated_across_chunks_of_an_import_rolls_everything_back(
    project: Project,
) -> None:
    """The import never repeats an id (a bad line); were a caller to, the prompts' unique
    constraint refuses it and nothing of the publication remains."""

    def chunk() -> list[PromptComparisons]:
        responses = [ResponseSpec("one"), ResponseSpec("two")]
        return [PromptComparisons("same", [{"role": "user", "content": "q"}], {}, responses, [])]

    with pytest.raises((IntegrityError, pg_errors.UniqueViolation)):
        publishing.publish_comparisons(
            project=project, source=BatchSource.IMPORT, name="twice", chunks=[chunk(), chunk()]
        )
    assert not Prompt.objects.filter(project=project).exists()
    assert not Batch.objects.filter(project=project).exists()


def test_ids_are_drawn_as_an_increasing_run() -> None:
    with connection.cursor() as wrapper:
        first = _next_ids(wrapper.cursor, Response._meta.db_table, 1000)
        second = _next_ids(wrapper.cursor, Response._meta.db_table, 3)
    assert len(first) == 1000 and list(first) == sorted(set(first))
    assert second[0] > first[-1] and len(second) == 3


def test_ids_drawn_out_of_a_run_come_as_a_sorted_list() -> None:
    """Ids that are not one run (here a sequence stepping by 2, as when another session draws
    between ours) are fetched one by one, still in increasing order."""
    with connection.cursor() as wrapper:
        wrapper.execute(
            "CREATE TEMPORARY TABLE stepping (id bigint GENERATED BY DEFAULT AS IDENTITY "
            "(START WITH 10 INCREMENT BY 2))"
        )
        ids = _next_ids(wrapper.cursor, "stepping", 5)
    assert list(ids) == [10, 12, 14, 16, 18]


def test_copy_text_escaping_round_trips(project: Project) -> None:
    texts = ["tab\there", "new\nline", "cr\rhere", "back\\slash", "\\N", "\\.", "plain"]
    records = [
        {"id": f"e{i}", "prompt": t, "response_a": t, "response_b": t + "!", "metadata": {"t": t}}
        for i, t in enumerate(texts)
    ]
    import_comparisons(project=project, stream=jsonl(*records), options=ImportOptions())
    for i, t in enumerate(texts):
        prompt = Prompt.objects.get(project=project, external_id=f"e{i}")
        assert prompt.messages == [{"role": "user", "content": t}]
        assert prompt.metadata == {"t": t}
        assert sorted(prompt.responses.values_list("content", flat=True)) == sorted([t, t + "!"])


def test_json_array_file_on_the_fast_path(project: Project) -> None:
    data = b'[{"id": "a", "prompt": "q", "responses": ["1", "2", "3"]}]'
    report = import_comparisons(project=project, stream=io.BytesIO(data), options=ImportOptions())
    assert report.comparisons_created == 3
