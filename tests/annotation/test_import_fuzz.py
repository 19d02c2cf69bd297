"""Hypothesis fuzzing of import files, posted through the real upload API as a project admin.

Files mix valid records of all three shapes (candidates, explicit pair, TRL row) with lines
corrupted on purpose (invalid JSON, wrong types, fields over the length limits, invalid UTF-8,
duplicate ids) and harmless empty lines. The file is built knowing which lines are bad, so the
properties are exact:

* any bad line → 400 ``invalid_import`` naming the first bad line, ``extra.bad_lines`` lists
  exactly the corrupted lines, and nothing is written (prompt, response, comparison and batch
  counts unchanged);
* a fully valid file imports every record and every pair;
* with ``skip_bad_lines`` the good lines are imported and exactly the bad ones listed.

Each example runs in a savepoint that is rolled back, so examples do not see each other's rows.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotation.import_records import MAX_CONTENT_CHARS, MAX_ID_CHARS
from annotation.models import Batch, Comparison, Project, Prompt, Response

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

# Free text for prompts and responses: any character but NUL (which PostgreSQL cannot store
# and the import refuses), control characters and astral planes included; kept non-blank and
# distinct by a prefix.
TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=12)


@dataclass
class Line:
    raw: bytes
    bad: bool = False
    record_id: str | None = None  # the external id a good record was imported under
    responses: int = 0  # candidates of a good record
    comparisons: int = 0  # pairs a good record creates (all pairs)


@dataclass
class ImportFile:
    lines: list[Line] = field(default_factory=list)
    array: bool = False

    def content(self) -> bytes:
        if self.array:
            return b"[\n" + b",\n".join(line.raw for line in self.lines) + b"\n]\n"
        return b"".join(line.raw + b"\n" for line in self.lines)

    def line_number(self, index: int) -> int:
        return index + 2 if self.array else index + 1  # an array opens with "[" on line 1

    @property
    def bad_numbers(self) -> list[int]:
        return [self.line_number(i) for i, line in enumerate(self.lines) if line.bad]

    @property
    def good(self) -> list[Line]:
        return [line for line in self.lines if not line.bad and line.record_id is not None]


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


@st.composite
def valid_record(draw: st.DrawFn, n: int) -> Line:
    """A valid record with a unique id, prompt and responses (numbered by ``n``)."""
    prompt = f"Prompt {n}: " + draw(TEXT)
    shape = draw(st.sampled_from(["candidates", "pair", "trl", "messages"]))
    if shape == "candidates":
        k = draw(st.integers(2, 4))
        responses: list[Any] = [f"Candidate {n}.{i}: " + draw(TEXT) for i in range(k)]
        if draw(st.booleans()):
            responses[0] = {"content": responses[0], "metadata": {"model": draw(TEXT)}}
        rid: Any = draw(st.sampled_from([f"rec-{n}", 1_000_000 + n]))
        value: dict[str, Any] = {"id": rid, "prompt": prompt, "responses": responses}
        return Line(dumps(value), record_id=str(rid), responses=k, comparisons=k * (k - 1) // 2)
    if shape == "pair":
        value = {
            "id": f"pair-{n}",
            "prompt": prompt,
            "response_a": f"A {n}: " + draw(TEXT),
            "response_b": f"B {n}: " + draw(TEXT),
        }
        gold = draw(st.sampled_from([None, "A", "B", "tie", "both_bad"]))
        if gold is not None:
            value["gold"] = gold
        return Line(dumps(value), record_id=f"pair-{n}", responses=2, comparisons=1)
    if shape == "messages":  # a multi-turn prompt, TRL conversational responses
        value = {
            "id": f"chat-{n}",
            "prompt": [
                {"role": "system", "content": draw(TEXT)},
                {"role": "user", "content": prompt},
            ],
            "chosen": [{"role": "assistant", "content": f"Good {n}: " + draw(TEXT)}],
            "rejected": [{"role": "assistant", "content": f"Bad {n}: " + draw(TEXT)}],
        }
        return Line(dumps(value), record_id=f"chat-{n}", responses=2, comparisons=1)
    value = {  # a TRL row without an id: keyed by a hash of its prompt
        "prompt": prompt,
        "chosen": f"Chosen {n}: " + draw(TEXT),
        "rejected": f"Rejected {n}: " + draw(TEXT),
    }
    return Line(dumps(value), record_id=f"trl-{n}", responses=2, comparisons=1)


# Corruptions that decode as JSON but fail validation (usable inside a JSON array too).
TYPE_ERRORS: list[Any] = [
    {"id": "t", "prompt": 42, "responses": ["a", "b"]},
    {"id": "t", "prompt": "q", "responses": "a, b"},
    {"id": "t", "prompt": "q", "responses": ["only one"]},
    {"id": "t", "prompt": "q", "responses": ["same", "same"]},
    {"id": "t", "prompt": "q", "responses": ["a", 7]},
    {"id": "t", "prompt": "q", "response_a": "a", "response_b": None},
    {"id": "t", "prompt": "q", "response_a": "a", "response_b": "b", "gold": "left"},
    {"id": True, "prompt": "q", "chosen": "a", "rejected": "b"},
    {"id": 1.5, "prompt": "q", "chosen": "a", "rejected": "b"},
    {"id": "t", "prompt": "q", "chosen": "a", "rejected": "b", "metadata": []},
    {"id": "t", "prompt": [{"role": "robot", "content": "hi"}], "chosen": "a", "rejected": "b"},
    {"id": "t", "prompt": [{"role": "assistant", "content": "hi"}], "chosen": "a", "rejected": "b"},
    {"id": "t", "prompt": "   ", "chosen": "a", "rejected": "b"},
    {"id": "t", "prompt": "q", "something": "else"},
    {"prompt": "q"},
    {"id": "t", "prompt": "NUL \x00 inside", "chosen": "a", "rejected": "b"},
    {"id": "t", "prompt": "q", "chosen": "a", "rejected": "b", "metadata": {"k\x00": 1}},
    "a string",
    17,
    None,
]


@st.composite
def bad_value_line(draw: st.DrawFn, n: int) -> Line:
    """A line that is valid JSON but not a valid record."""
    kind = draw(st.sampled_from(["type", "huge_prompt", "huge_response", "long_id"]))
    if kind == "type":
        return Line(dumps(draw(st.sampled_from(TYPE_ERRORS))), bad=True)
    if kind == "huge_prompt":
        value = {
            "id": f"huge-{n}",
            "prompt": "p" * (MAX_CONTENT_CHARS + 1),
            "responses": ["a", "b"],
        }
    elif kind == "huge_response":
        value = {"id": f"huge-{n}", "prompt": "q", "chosen": "c" * (MAX_CONTENT_CHARS + 1)}
        value["rejected"] = "r"
    else:
        value = {"id": "i" * (MAX_ID_CHARS + 1), "prompt": "q", "chosen": "a", "rejected": "b"}
    return Line(dumps(value), bad=True)


RAW_ERRORS: list[bytes] = [
    b"not json at all",
    b'{"id": "x", "prompt": "q", "responses": ["a", "b"]',  # truncated
    b'{"id": "x", "prompt": "q", "responses": ["a", "b"],}',  # trailing comma
    b"{'id': 'x'}",  # single quotes
    b'{"id": "x", "prompt": "\xff\xfe", "chosen": "a", "rejected": "b"}',  # invalid UTF-8
    b'{"id": "x", "prompt": "caf\xc3", "chosen": "a", "rejected": "b"}',  # truncated UTF-8
    b'{"id": "x", "prompt": "\\ud800", "chosen": "a", "rejected": "b"}',  # lone surrogate
    b'{"id": "x", "prompt": "q", "chosen": NaN, "rejected": "b"}',
    b'{"id": 123456789012345678901234567890, "prompt": "q", "chosen": "a", "rejected": "b"}',
    b"\x00\x01\x02",
    b"]",
]


@st.composite
def import_files(draw: st.DrawFn, *, bad: bool | None) -> ImportFile:
    """A JSONL file. ``bad``: True → at least one bad line, False → none, None → either."""
    count = draw(st.integers(1, 12))
    kinds = draw(
        st.lists(
            st.sampled_from(
                ["good", "good", "empty"] + ([] if bad is False else ["raw", "value", "dup"])
            ),
            min_size=count,
            max_size=count,
        )
    )
    if bad and not any(k in ("raw", "value", "dup") for k in kinds):
        kinds[draw(st.integers(0, count - 1))] = draw(st.sampled_from(["raw", "value"]))
    file = ImportFile()
    for n, kind in enumerate(kinds):
        earlier = [line.raw for line in file.lines if not line.bad and line.record_id]
        if kind == "dup" and earlier:
            # Same id as an earlier good record (and its exact content): a duplicate.
            file.lines.append(Line(draw(st.sampled_from(earlier)), bad=True))
        elif kind == "empty":
            file.lines.append(Line(draw(st.sampled_from([b"", b"   ", b"\t", b"\r"]))))
        elif kind in ("raw", "dup"):
            file.lines.append(Line(draw(st.sampled_from(RAW_ERRORS)), bad=True))
        elif kind == "value":
            file.lines.append(draw(bad_value_line(n)))
        else:
            file.lines.append(draw(valid_record(n)))
    if not bad and not file.good:  # something to import
        file.lines.append(draw(valid_record(count)))
    return file


@st.composite
def array_files(draw: st.DrawFn) -> ImportFile:
    """A JSON-array file, one element a line; bad elements are records of the wrong type.

    (A JSONL file must not start with a list: a file whose first value opens with "[" is read
    as one JSON array.)"""
    count = draw(st.integers(1, 8))
    file = ImportFile(array=True)
    wrong = [*TYPE_ERRORS, ["a", "nested", "array"]]
    for n in range(count):
        if draw(st.booleans()):
            file.lines.append(draw(valid_record(n)))
        else:
            file.lines.append(Line(dumps(draw(st.sampled_from(wrong))), bad=True))
    return file


def counts() -> dict[str, int]:
    return {
        "prompts": Prompt.objects.count(),
        "responses": Response.objects.count(),
        "comparisons": Comparison.objects.count(),
        "batches": Batch.objects.count(),
    }


def upload(client: Client, project: Project, file: ImportFile, **options: Any) -> Any:
    data = io.BytesIO(file.content())
    data.name = "fuzz.json" if file.array else "fuzz.jsonl"
    return client.post(f"/api/projects/{project.id}/imports/", {"file": data, **options})


@pytest.fixture
def admin_client(project: Project, project_admin: Any) -> Client:
    client = Client()
    client.force_login(project_admin)
    return client


def in_savepoint(check: Any) -> None:
    with transaction.atomic():
        try:
            check()
        finally:
            transaction.set_rollback(True)


def assert_rejected_exactly(response: Any, file: ImportFile) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    expected = file.bad_numbers
    assert body["code"] == "invalid_import", body
    assert f"first: line {expected[0]}:" in body["message"], (expected, body["message"])
    assert [b["line"] for b in body["extra"]["bad_lines"]] == expected, (expected, body)
    assert all(b["message"] for b in body["extra"]["bad_lines"]), body
    assert body["extra"]["bad_line_count"] == len(expected)
    assert body["extra"]["batch_id"] is None


def assert_imported(response: Any, file: ImportFile, before: dict[str, int]) -> None:
    assert response.status_code == 201, response.content
    body = response.json()
    good = file.good
    assert body["records_imported"] == len(good), body
    assert body["prompts_created"] == len(good), body
    assert body["responses_created"] == sum(line.responses for line in good), body
    assert body["comparisons_created"] == sum(line.comparisons for line in good), body
    assert [b["line"] for b in body["bad_lines"]] == file.bad_numbers, body
    after = counts()
    assert after == {
        "prompts": before["prompts"] + len(good),
        "responses": before["responses"] + sum(line.responses for line in good),
        "comparisons": before["comparisons"] + sum(line.comparisons for line in good),
        "batches": before["batches"] + 1,
    }
    batch = Batch.objects.get(pk=body["batch_id"])
    assert batch.comparison_count == body["comparisons_created"]
    assert Comparison.objects.filter(batch=batch).count() == body["comparisons_created"]
    ids = {line.record_id for line in good if not (line.record_id or "").startswith("trl-")}
    stored = set(Prompt.objects.filter(project=batch.project).values_list("external_id", flat=True))
    assert ids <= stored


@FUZZ
@given(file=import_files(bad=True))
def test_a_file_with_a_bad_line_imports_nothing_and_names_every_bad_line(
    admin_client: Client, project: Project, file: ImportFile
) -> None:
    def check() -> None:
        before = counts()
        assert_rejected_exactly(upload(admin_client, project, file), file)
        assert counts() == before

    in_savepoint(check)


@FUZZ
@given(file=import_files(bad=False))
def test_a_valid_file_imports_every_record(
    admin_client: Client, project: Project, file: ImportFile
) -> None:
    def check() -> None:
        before = counts()
        assert_imported(upload(admin_client, project, file), file, before)

    in_savepoint(check)


@FUZZ
@given(file=import_files(bad=None))
def test_skip_bad_lines_imports_the_good_lines_and_lists_the_bad(
    admin_client: Client, project: Project, file: ImportFile
) -> None:
    def check() -> None:
        before = counts()
        response = upload(admin_client, project, file, skip_bad_lines="true")
        assert_imported(response, file, before)

    in_savepoint(check)


@FUZZ
@given(file=array_files())
def test_a_json_array_reports_the_line_each_bad_element_starts_on(
    admin_client: Client, project: Project, file: ImportFile
) -> None:
    def check() -> None:
        before = counts()
        response = upload(admin_client, project, file)
        if file.bad_numbers:
            assert_rejected_exactly(response, file)
            assert counts() == before
        else:
            assert_imported(response, file, before)

    in_savepoint(check)
