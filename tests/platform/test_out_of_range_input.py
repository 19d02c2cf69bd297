"""Numbers and structures no column or parser can hold are the client's mistake: a 4xx with
a message, never a 500 — ids beyond 64 bits in paths and bodies, Unicode digits, non-finite
or absurd numbers in configs, JSON arrays nested too deeply, and requests too large for the
database."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client

from annotation.importing import ImportOptions, ImportRejected, import_comparisons
from annotation.models import Project
from preflab.converters import MAX_ID, IdConverter
from preflab.errors import exception_handler
from tests.annotation.factories import pair_records

HUGE = 10**23


def test_the_id_converter_refuses_numbers_beyond_64_bits() -> None:
    converter = IdConverter()
    assert converter.to_python(str(MAX_ID)) == MAX_ID
    with pytest.raises(ValueError):
        converter.to_python(str(MAX_ID + 1))


@pytest.mark.django_db
def test_ids_beyond_64_bits_in_paths_are_404s(
    project: Project, annotator: Any, project_admin: Any, ml_engineer: Any, client: Client
) -> None:
    client.force_login(annotator)
    assert client.get(f"/api/projects/{HUGE}/").status_code == 404
    submit = f"/api/projects/{project.id}/assignments/{HUGE}/submit/"
    assert client.post(submit, {"choice": "left"}, content_type="application/json").status_code == (
        404
    )
    client.force_login(project_admin)
    assert client.get(f"/api/projects/{project.id}/exports/{HUGE}/").status_code == 404
    client.force_login(ml_engineer)
    runs = f"/api/projects/{project.id}/training-runs/"
    assert client.get(f"{runs}{HUGE}/").status_code == 404
    assert client.get(f"{runs}{MAX_ID}/").status_code == 404  # the largest id is still an id


@pytest.mark.django_db
def test_ids_beyond_64_bits_in_bodies_are_400s(
    project: Project, project_admin: Any, client: Client
) -> None:
    client.force_login(project_admin)
    response = client.post(
        f"/api/projects/{project.id}/exclusions/",
        {"annotator_id": HUGE, "reason": "spam"},
        content_type="application/json",
    )
    assert response.status_code in (400, 404), response.content
    assert response.json()["message"]


@pytest.mark.django_db
def test_unicode_digits_in_a_step_number_are_a_400(
    project: Project, ml_engineer: Any, client: Client
) -> None:
    client.force_login(ml_engineer)
    url = f"/api/projects/{project.id}/training-runs/1/metrics/"
    for after in ("²", "١٢", "9" * 40):
        response = client.get(url, {"after": after})
        assert response.status_code in (400, 404), (after, response.content)
        assert response.status_code != 404 or response.json()["code"] == "not_found"


def test_overflow_and_too_many_variables_are_client_errors() -> None:
    overflow = exception_handler(OverflowError("Python int too large"), {})
    assert overflow is not None and overflow.status_code == 400
    assert overflow.data["code"] == "value_out_of_range"
    too_many = exception_handler(OperationalError("too many SQL variables"), {})
    assert too_many is not None and too_many.status_code == 400
    assert too_many.data["code"] == "request_too_large"
    lost = exception_handler(OperationalError("server closed the connection unexpectedly"), {})
    assert lost is not None and lost.status_code == 503  # a real outage is still retried


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"margins": {"1": 0, "2": 0.3, "3": "NaN", "4": 1}}, "margins"),
        ({"margins": {"1": 0, "2": 0.3, "3": "Infinity", "4": 1}}, "margins"),
        ({"margins": {"1": 0, "2": 0.3, "3": 1e300, "4": 1}}, "margins"),
        ({"min_votes": 10**400}, "min_votes"),
        ({"test_fraction": "NaN"}, "test_fraction"),
    ],
)
def test_non_finite_and_absurd_export_options_are_400s(
    project: Project, project_admin: Any, client: Client, options: dict[str, Any], field: str
) -> None:
    client.force_login(project_admin)
    response = client.post(
        f"/api/projects/{project.id}/exports/", options, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert field in json.dumps(response.json())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"policy": {"seed": -1}}, "seed"),
        ({"reward": {"seed": 2**40}}, "seed"),
        ({"min_judgments": 10**29}, "min_judgments"),
        ({"policy": {"learning_rate": "NaN"}}, "learning_rate"),
        ({"policy": {"total_episodes": 10**400}}, "total_episodes"),
        ({"policy": {"kl_coef": 1e308 * 10}}, "config"),  # 1e400: not valid JSON here
        ({"generation": {"sampling": {"seed": -5}}}, "seed"),
    ],
)
def test_round_configs_the_run_would_reject_are_400s_when_the_round_is_created(
    project: Project, ml_engineer: Any, client: Client, config: dict[str, Any], field: str
) -> None:
    client.force_login(ml_engineer)
    body = json.dumps({"config": config}).replace("Infinity", "1e400")
    response = client.post(
        f"/api/projects/{project.id}/rounds/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert field in json.dumps(response.json())


@pytest.mark.django_db
def test_a_json_array_nested_too_deeply_is_a_bad_line(project: Project) -> None:
    good = json.dumps(pair_records(2))[:-1]  # "[{…}, {…}"
    deep = "[" * 100_000 + "]" * 100_000
    stream = io.BytesIO(f"{good},\n{deep}]".encode())
    with pytest.raises(ImportRejected) as rejected:
        import_comparisons(project=project, stream=stream, options=ImportOptions())
    bad = rejected.value.extra["bad_lines"]
    assert bad[0]["line"] == 2 and "nested too deeply" in bad[0]["message"]


@pytest.mark.django_db
def test_json_array_line_numbers_are_right_far_into_the_file(project: Project) -> None:
    rows: list[Any] = pair_records(300)
    rows[250] = {"prompt": "no responses"}
    text = "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]"
    with pytest.raises(ImportRejected) as rejected:
        import_comparisons(
            project=project, stream=io.BytesIO(text.encode()), options=ImportOptions()
        )
    assert [b["line"] for b in rejected.value.extra["bad_lines"]] == [252]


@pytest.mark.django_db
def test_long_file_names_huge_metadata_and_invisible_responses(project: Project) -> None:
    from annotation.importing import BATCH_NAME_CHARS
    from annotation.models import Batch

    rows = pair_records(2)
    report = import_comparisons(
        project=project,
        stream=io.BytesIO("\n".join(json.dumps(r) for r in rows).encode()),
        options=ImportOptions(),
        source_name="x" * 5000 + ".jsonl",
    )
    batch = Batch.objects.get(pk=report.batch_id)
    assert len(batch.name) == BATCH_NAME_CHARS == 200

    big = dict(pair_records(1)[0], id="big", metadata={"blob": "m" * 70_000})
    ghost = dict(pair_records(1)[0], id="ghost", response_b="\u200b\u2060\ufeff \u200d")
    lines = "\n".join(json.dumps(r) for r in (big, ghost)) + "\n"
    with pytest.raises(ImportRejected) as rejected:
        import_comparisons(
            project=project, stream=io.BytesIO(lines.encode()), options=ImportOptions()
        )
    messages = {b["line"]: b["message"] for b in rejected.value.extra["bad_lines"]}
    assert "larger than 64 KiB" in messages[1]
    assert "only invisible characters" in messages[2]
    # a metadata nested deeper than any parser allows is a bad line, not a crash
    record = json.dumps(dict(pair_records(1)[0], id="deep", metadata={"deep": "HERE"}))
    text = record.replace('"HERE"', "[" * 5000 + '"x"' + "]" * 5000)
    with pytest.raises(ImportRejected) as rejected:
        import_comparisons(
            project=project, stream=io.BytesIO(text.encode()), options=ImportOptions()
        )
    assert rejected.value.extra["bad_lines"][0]["line"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        '{"choice": "left", "rationale": ' + "[" * 3000 + "]" * 3000 + "}",
    ],
    ids=["array", "object", "in-a-field"],
)
def test_json_bodies_nested_too_deeply_are_400s(
    project: Project, project_admin: Any, client: Client, body: str
) -> None:
    client.force_login(project_admin)
    for url in ("/api/auth/tokens/", f"/api/projects/{project.id}/exports/"):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "parse_error"
        assert "nested too deeply" in response.json()["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("text", ['"\\ud800"', '"x\\udfffy"', '{"\\udc00": 1}'])
def test_lone_surrogates_in_json_bodies_are_400s(
    project: Project, ml_engineer: Any, client: Client, text: str
) -> None:
    # valid JSON text, but no string a database or a response can encode (was a 500 on
    # PostgreSQL: the driver, and the error message echoing the value, could not encode it)
    client.force_login(ml_engineer)
    for url, body in (
        (f"/api/projects/{project.id}/rounds/", '{"config": {"algorithm": %s}}'),
        (f"/api/projects/{project.id}/training-runs/", '{"base_artifact": 1, "config": %s}'),
        ("/api/auth/tokens/", '{"name": %s}'),
    ):
        response = client.post(url, body % text, content_type="application/json")
        assert response.status_code == 400, (url, response.content)
        assert response.json()["code"] == "parse_error"
        assert "lone surrogate" in response.json()["message"]


@pytest.mark.django_db
def test_api_paths_that_match_no_route_are_404s_with_the_error_body(
    project: Project, ml_engineer: Any, client: Client
) -> None:
    client.force_login(ml_engineer)
    for path in (
        "/api/projects/NaN/",
        "/api/projects/%C2%B2/",  # "²"
        f"/api/projects/{project.id}/training-runs/-1/",
        "/api/system/worker-ping/not-a-uuid/",
        "/api/no-such-endpoint/",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"code": "not_found", "message": "Not found.", "extra": {}}
    outside = client.get("/healthz-no-such-page")  # outside /api/: Django's own page
    assert outside.status_code == 404 and "json" not in outside["Content-Type"]
