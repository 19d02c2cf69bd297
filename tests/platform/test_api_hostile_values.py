"""Hostile values in every field of every operation: a clear 4xx, never a 5xx.

For every operation of ``/api/schema/`` this module builds one valid request (path ids pinned
to the permission matrix's :class:`World`, a realistic body that the handler accepts — each
base request is itself checked to succeed) and then replaces exactly one field at a time with
a hostile value while the rest of the request stays valid, so that the value reaches the
handler behind the validation of the other fields. Fields are every path parameter, every
query parameter, and every body field found by walking the request-body schema (nested
objects, array items, ``additionalProperties``) together with the base body itself (the
free-form ``config`` objects of runs and rounds have no schema but real keys). Hostile values:
integers beyond 64 bits (as JSON numbers and as strings), ``NaN``/``Infinity`` as bare JSON
tokens and as strings, Unicode digits, 100,000-character strings, NUL and lone surrogates,
arrays and objects nested 10,000 deep (also as the whole raw body), and empty, null and
wrong-type values. Every (field, value) pair of that fixed list runs as an explicit Hypothesis
example; Hypothesis then draws further values from the same families. The request is sent
as the first role of ml_engineer, project_admin, annotator, superuser that the permission
matrix lets in. Checks: never a 5xx; every 4xx carries ``{"code", "message", "extra"}``.

Each example runs in a rolled-back savepoint (every request sees the same World), and the run
is deterministic (``derandomize=True``, no example database).

Both databases in one suite run: the module runs on whichever database the suite uses, and
when that is PostgreSQL, :func:`test_the_same_fuzz_passes_on_sqlite` re-runs this module in a
``pytest`` subprocess with ``DATABASE_URL`` unset, where the settings fall back to SQLite.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.db import connection, transaction
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.services import issue_token
from annotation.models import Batch, DatasetExport, ExportStatus, Prompt
from tests.conftest import PASSWORD
from tests.platform import test_api_fuzz
from tests.platform.test_api_fuzz import StandInTask, allowed_roles, load_schema
from tests.platform.test_permission_matrix import World
from tests.sqlite_rerun import on_postgres, run_on_sqlite
from training.ml.reward import RewardTrainingConfig
from training.round_config import default_round_config

pytestmark = pytest.mark.django_db

# the fuzz's fixtures, shared by name: the World of the permission matrix, empty throttles
world = test_api_fuzz.world
fresh_throttles = test_api_fuzz.fresh_throttles
in_process_wsgi = test_api_fuzz.in_process_wsgi  # the schema is read through the WSGI app

ROLE_ORDER = ("ml_engineer", "project_admin", "annotator", "superuser")
GENERATED_PER_OPERATION = 25  # drawn values beyond the fixed list, per operation
DEPTH = 10_000
LONG = 100_000


@dataclass(frozen=True)
class Hostile:
    """A value as raw JSON text (may be no valid JSON for Python: ``NaN``, 10,000-deep
    nesting) and as the text a query string, path segment or form field carries."""

    label: str
    json_text: str
    text: str


def _string(value: str, label: str) -> Hostile:
    return Hostile(label, json.dumps(value), value)


def _number(value: int, label: str) -> list[Hostile]:
    return [Hostile(label, str(value), str(value)), _string(str(value), f"{label} as a string")]


FIXED: list[Hostile] = [
    *_number(2**63, "2**63"),
    *_number(-(2**63) - 1, "-2**63-1"),
    *_number(10**23, "10**23"),
    *_number(10**400, "10**400"),
    Hostile("NaN token", "NaN", "NaN"),
    Hostile("Infinity token", "Infinity", "Infinity"),
    Hostile("-Infinity token", "-Infinity", "-Infinity"),
    _string("NaN", "'NaN'"),
    _string("Infinity", "'Infinity'"),
    _string("-Infinity", "'-Infinity'"),
    _string("²", "superscript two"),
    _string("١٢٣", "Arabic-Indic digits"),
    _string("𝟗", "mathematical digit nine"),
    _string("x" * LONG, "100k characters"),
    _string("a\x00b", "NUL"),
    _string("\ud800", "lone high surrogate"),
    _string("x\udfffy", "lone low surrogate"),
    Hostile("array 10k deep", "[" * DEPTH + "]" * DEPTH, "[" * DEPTH + "]" * DEPTH),
    Hostile("object 10k deep", '{"a":' * DEPTH + "1" + "}" * DEPTH, '{"a":' * DEPTH + "}"),
    _string("", "empty string"),
    Hostile("null", "null", "null"),
    Hostile("empty array", "[]", "[]"),
    Hostile("empty object", "{}", "{}"),
    Hostile("true", "true", "true"),
    Hostile("1.5", "1.5", "1.5"),
    Hostile("-1", "-1", "-1"),
    Hostile("0", "0", "0"),
]


def _nested(depth: int) -> Hostile:
    return Hostile(f"array {depth} deep", "[" * depth + "]" * depth, "[" * depth + "]" * depth)


_NUL_OR_SURROGATE = st.one_of(
    st.just("\x00"), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
)
GENERATED: st.SearchStrategy[Hostile] = st.one_of(
    st.integers(min_value=2**63).map(lambda n: Hostile(f"int {n}", str(n), str(n))),
    st.integers(max_value=-(2**63) - 1).map(lambda n: Hostile(f"int {n}", str(n), str(n))),
    st.integers(min_value=2**63).map(lambda n: _string(str(n), f"'{n}'")),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: Hostile(f"float {f!r}", json.dumps(f), repr(f))
    ),
    st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=5).map(
        lambda s: _string(s, f"digits {s!r}")
    ),
    st.text(st.one_of(_NUL_OR_SURROGATE, st.characters()), min_size=1, max_size=20).map(
        lambda s: _string(s, f"text {s!r}")
    ),
    st.integers(min_value=900, max_value=DEPTH).map(_nested),
)

# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]  # a location in a JSON body: keys and list indices


@dataclass
class Base:
    """One valid request of an operation."""

    path_params: dict[str, Any]
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON body (a dict), or None
    form: dict[str, str] | None = None  # multipart fields besides the file
    file: bytes | None = None  # the multipart file
    ok: tuple[int, ...] = (200, 201, 202, 204)


@dataclass(frozen=True)
class Target:
    where: str  # "path", "query", "body", "form", "file", "raw"
    name: str = ""  # path/query/form parameter
    location: Path_ = ()  # body location

    def __str__(self) -> str:
        if self.where == "body":
            return "body" + "".join(f"[{p!r}]" for p in self.location)
        return f"{self.where} {self.name}".strip()


_MARK = "\x00hostile\x00"


def _set(body: Any, location: Path_, value: Any) -> Any:
    """A copy of ``body`` with ``value`` at ``location`` (created along the way)."""
    if not location:
        return value
    head, rest = location[0], location[1:]
    if isinstance(head, int):
        items = list(body) if isinstance(body, list) else []
        while len(items) <= head:
            items.append(None)
        items[head] = _set(items[head], rest, value)
        return items
    obj = dict(body) if isinstance(body, dict) else {}
    obj[head] = _set(obj.get(head), rest, value)
    return obj


def encode_with(body: Any, location: Path_, hostile: Hostile) -> str:
    """The JSON text of ``body`` with the hostile value's raw text at ``location``."""
    text = json.dumps(_set(body, location, _MARK))
    marker = json.dumps(_MARK)
    assert text.count(marker) == 1
    return text.replace(marker, hostile.json_text)


def _url(template: str, params: dict[str, Any]) -> str:
    url = template
    for name, value in params.items():
        raw = str(value).encode("utf-8", "surrogatepass")
        url = url.replace("{" + name + "}", quote(raw, safe=""))
    return url


def _query(query: dict[str, str]) -> str:
    parts = [
        f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in query.items()
    ]
    return "?" + "&".join(parts) if parts else ""


def send(
    client: Client,
    method: str,
    template: str,
    base: Base,
    target: Target | None,
    hostile: Hostile | None,
) -> Any:
    """The base request, with the hostile value at the target when both are given."""
    path_params, query = dict(base.path_params), dict(base.query)
    body_text = None if base.body is None else json.dumps(base.body)
    form, file = (dict(base.form) if base.form is not None else None), base.file
    if target is not None and hostile is not None:
        if target.where == "path":
            path_params[target.name] = hostile.text
        elif target.where == "query":
            query[target.name] = hostile.text
        elif target.where == "body":
            body_text = encode_with(base.body, target.location, hostile)
        elif target.where == "raw":
            body_text = hostile.json_text
        elif target.where == "form":
            assert form is not None
            form[target.name] = hostile.text
        elif target.where == "file":
            file = hostile.json_text.encode("utf-8", "surrogatepass") + b"\n"
    url = _url(template, path_params) + _query(query)
    call = getattr(client, method)
    if form is not None:
        payload = multipart(form, file or b"")
        return call(url, payload, content_type=f"multipart/form-data; boundary={BOUNDARY}")
    if body_text is not None:
        payload = body_text.encode("utf-8", "surrogatepass")
        return call(url, payload, content_type="application/json")
    return call(url)


BOUNDARY = "hostile-boundary-7d1f"


def multipart(form: dict[str, str], file: bytes) -> bytes:
    """A multipart body by hand: field values may hold lone surrogates (sent as the bytes
    they would be in UTF-8), which Django's test client cannot encode."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode("utf-8", "surrogatepass")
        + b"\r\n"
        for name, value in form.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="items.jsonl"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        + file
        + b"\r\n"
    )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def problem(response: Any) -> str | None:
    """What is wrong with an answer, or None: a 5xx, or a 4xx without our error body."""
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.content[:300]!r}"
    if 400 <= status < 500:
        try:
            body = json.loads(response.content)
        except ValueError:
            return f"{status} without a JSON body: {response.content[:200]!r}"
        if not (
            isinstance(body, dict)
            and set(body) == {"code", "message", "extra"}
            and isinstance(body["code"], str)
            and body["code"]
            and isinstance(body["message"], str)
            and isinstance(body["extra"], dict)
        ):
            return f"{status} without the error body: {str(body)[:200]}"
    return None


# ---------------------------------------------------------------------------------------------
# Targets: every parameter and every body field
# ---------------------------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        return _resolve(schema["allOf"][0], components) | merged
    return schema


def schema_locations(
    schema: dict[str, Any], components: dict[str, Any], prefix: Path_ = ()
) -> Iterator[Path_]:
    """Every field of a request-body schema: properties, array items, additionalProperties."""
    schema = _resolve(schema, components)
    for name, sub in schema.get("properties", {}).items():
        yield (*prefix, name)
        yield from schema_locations(sub, components, (*prefix, name))
    if isinstance(schema.get("items"), dict):
        yield (*prefix, 0)
        yield from schema_locations(schema["items"], components, (*prefix, 0))
    if isinstance(schema.get("additionalProperties"), dict):
        yield (*prefix, "1")
        yield from schema_locations(schema["additionalProperties"], components, (*prefix, "1"))


def value_locations(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every location inside a concrete body (free-form objects have keys but no schema)."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield (*prefix, key)
            yield from value_locations(sub, (*prefix, key))
    elif isinstance(value, list) and value:
        yield (*prefix, 0)
        yield from value_locations(value[0], (*prefix, 0))


def targets_of(operation: Any, base: Base, spec: dict[str, Any]) -> list[Target]:
    raw = operation.definition.raw
    found: list[Target] = []
    for parameter in raw.get("parameters", []):
        if parameter["in"] in ("path", "query"):
            found.append(Target(parameter["in"], parameter["name"]))
    for name in base.query:
        if Target("query", name) not in found:
            found.append(Target("query", name))
    content = raw.get("requestBody", {}).get("content", {})
    components = spec["components"]["schemas"]
    if base.form is not None:
        found += [Target("form", name) for name in base.form] + [Target("file")]
    elif base.body is not None:
        schema = content["application/json"]["schema"]
        locations = dict.fromkeys(
            [*schema_locations(schema, components), *value_locations(base.body)]
        )
        found += [Target("body", location=loc) for loc in locations]
        found.append(Target("raw"))
    elif content or operation.method.lower() in ("post", "put", "patch"):
        found.append(Target("raw"))  # no documented body: a hostile one is ignored or refused
    return found


# ---------------------------------------------------------------------------------------------
# Valid requests of every operation
# ---------------------------------------------------------------------------------------------


def valid_requests(built: World) -> tuple[dict[str, Any], dict[tuple[str, str], Base]]:
    """Path parameters of this project's objects (and of the caller's own token), and
    (method, OpenAPI path) → a valid request where the operation takes a query or body."""
    ids = built.ids["mine"]
    project = built.project
    DatasetExport.objects.filter(pk=ids["export_id"]).update(status=ExportStatus.SUCCEEDED)
    batch_id = Batch.objects.filter(project=project).values_list("id", flat=True).first()
    prompt_id = Prompt.objects.filter(project=project).values_list("id", flat=True).first()
    credentials = {"username": "ml_engineer", "password": PASSWORD}
    reward_config = asdict(RewardTrainingConfig())
    base = ids | {"token_id": issue_token(user=built.users["ml_engineer"]).token.pk}
    # a directory inside the model roots to register (its validation runs as a task later)
    model_dir = Path(django_settings.ARTIFACT_ROOT) / "byo-model"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.json").write_text("{}")
    p = "/api/projects/{project_id}"
    return base, {
        ("post", "/api/auth/login/"): Base(base, body=credentials),
        ("post", "/api/auth/token/"): Base(base, body=credentials),
        ("post", "/api/auth/tokens/"): Base(base, body={"name": "ci"}),
        ("get", "/api/projects/"): Base(base, query={"page": "1"}),
        ("post", p + "/assignments/{assignment_id}/skip/"): Base(base, body={"reason": "r"}),
        ("post", p + "/assignments/{assignment_id}/submit/"): Base(
            base,
            body={"choice": "left", "strength": 3, "rationale": "r", "time_taken_ms": 1000},
        ),
        ("post", p + "/exclusions/"): Base(
            base, body={"annotator_id": built.users["annotator"].id, "reason": "spam"}
        ),
        ("post", p + "/exclusions/{exclusion_id}/revoke/"): Base(base, body={"reason": "ok"}),
        ("post", p + "/exports/"): Base(
            base,
            body={
                "batches": [batch_id],
                "judged_after": "2000-01-01T00:00:00Z",
                "judged_before": "2100-01-01T00:00:00Z",
                "min_votes": 1,
                "min_confidence": 0.0,
                "consensus": "majority",
                "ties": "exclude",
                "both_bad": "exclude",
                "include_gold": False,
                "style": "standard",
                "margins": {"1": 0.0, "2": 0.3, "3": 0.6, "4": 1.0},
                "test_fraction": 0.1,
                "seed": 1,
                "formats": ["jsonl"],
            },
        ),
        ("post", p + "/imports/"): Base(
            base,
            form={
                "pairing": "all_pairs",
                "pairs_per_prompt": "3",
                "skip_bad_lines": "false",
                "batch_name": "hostile",
                "seed": "0",
            },
            file=json.dumps({"id": "h1", "prompt": "Which?", "responses": ["a", "b"]}).encode()
            + b"\n",
        ),
        ("post", p + "/import-jobs/"): Base(
            base,
            form={
                "pairing": "all_pairs",
                "pairs_per_prompt": "3",
                "skip_bad_lines": "false",
                "batch_name": "hostile",
                "seed": "0",
            },
            file=json.dumps({"id": "h2", "prompt": "Which?", "responses": ["a", "b"]}).encode()
            + b"\n",
        ),
        ("post", p + "/queue/next/"): Base(base, body={"exclude": [1]}),
        ("post", p + "/artifacts/"): Base(
            base, body={"path": str(model_dir), "kind": "policy", "name": "byo"}
        ),
        ("post", p + "/rounds/{round_id}/override/"): Base(base, body={"reason": "checked"}),
        ("post", p + "/rounds/"): Base(
            base, body={"base_policy": ids["artifact_id"], "config": default_round_config()}
        ),
        ("post", p + "/training-runs/"): Base(
            base,
            body={
                "kind": "reward",
                "base_artifact": ids["artifact_id"],
                "dataset_export": ids["export_id"],
                "reward_artifact": None,
                "compare_artifact": None,
                "prompt_ids": [prompt_id],
                "config": reward_config,
            },
        ),
        ("get", p + "/training-runs/{run_id}/metrics/"): Base(base, query={"after": "0"}),
        ("get", "/api/system/worker-ping/{task_id}/"): Base(base, query={"queue": "default"}),
        ("post", "/api/projects/"): Base(
            base,
            body={"name": "fuzzed", "description": "d", "instructions": "# i", "overlap_k": 2},
        ),
        ("patch", p + "/"): Base(
            base,
            body={
                "name": "renamed",
                "overlap_k": 4,
                "lease_ttl_seconds": 900,
                "allow_tie": False,
                "rationale_mode": "required",
                "gold_rate": 0.2,
                "min_median_seconds": 2.0,
            },
        ),
        ("post", p + "/members/"): Base(
            base, body={"user": "other_annotator", "role": "annotator"}
        ),
        ("patch", p + "/members/{user_id}/"): Base(base, body={"role": "ml_engineer"}),
        ("post", p + "/invites/"): Base(base, body={"role": "annotator", "expires_in_hours": 24}),
    }


# Base requests that are valid yet answer a 4xx in the World as built: the state, not the
# request, refuses them (a second round while one runs, a round's retry while it runs, …).
STATE_REFUSALS = {
    ("post", "/api/projects/{project_id}/rounds/"): (409,),
    ("post", "/api/projects/{project_id}/rounds/{round_id}/retry/"): (409,),
    ("post", "/api/projects/{project_id}/rounds/{round_id}/override/"): (409,),
    ("post", "/api/projects/{project_id}/training-runs/{run_id}/cancel/"): (409,),
    ("get", "/api/projects/{project_id}/exports/{export_id}/files/{name}"): (404,),
    ("post", "/api/projects/{project_id}/queue/next/"): (204, 404),
    # the World's lease is live, not judged: nothing to undo
    ("post", "/api/projects/{project_id}/assignments/{assignment_id}/undo/"): (409,),
    ("post", "/api/projects/{project_id}/unarchive/"): (409,),  # the project is not archived
    ("post", "/api/invites/{token}/accept/"): (410,),  # the World's invite is revoked
}


def role_for(path: str, method: str) -> str:
    allowed = allowed_roles(path, method)
    return next(role for role in ROLE_ORDER if role in allowed)


def clear_caches() -> None:
    """Logins spend the login rate: every example starts with empty counters."""
    for alias in ("default", "shared"):
        caches[alias].clear()


def fuzz_operation(
    client: Client, operation: Any, base: Base, targets: list[Target]
) -> tuple[list[str], int]:
    """Every (target, fixed value) and generated ones; returns the problems and the count."""
    method, template = operation.method.lower(), operation.path
    problems: list[str] = []
    count = 0

    @settings(
        max_examples=GENERATED_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(target=st.sampled_from(targets), hostile=st.one_of(st.sampled_from(FIXED), GENERATED))
    def check(target: Target, hostile: Hostile) -> None:
        nonlocal count
        count += 1
        if template.startswith("/api/auth/"):
            clear_caches()
        with transaction.atomic():
            try:
                response = send(client, method, template, base, target, hostile)
            finally:
                transaction.set_rollback(True)
        wrong = problem(response)
        if wrong is not None:
            problems.append(f"{method.upper()} {template} {target} = {hostile.label}: {wrong}")

    for target in targets:
        for hostile in FIXED:
            check = example(target=target, hostile=hostile)(check)
    check()
    return problems, count


def test_every_field_of_every_operation_refuses_hostile_values(
    world: World,
    fresh_throttles: None,
    in_process_wsgi: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("preflab.views.ping", StandInTask())
    schema = load_schema()
    spec = schema.raw_schema
    ids, bases = valid_requests(world)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30, "the schema lost its operations"
    clients: dict[str, Client] = {}
    problems: list[str] = []
    refused_base: list[str] = []
    total, started = 0, time.monotonic()
    timings: list[str] = []
    for operation in operations:
        method, template = operation.method.lower(), operation.path
        role = role_for(template, method)
        if role not in clients:
            token = issue_token(user=world.users[role]).key
            clients[role] = Client(
                raise_request_exception=False, HTTP_AUTHORIZATION=f"Token {token}"
            )
        client = clients[role]
        base = bases.get((method, template), Base(dict(ids)))
        clear_caches()
        with transaction.atomic():
            try:
                answer = send(client, method, template, base, None, None)
            finally:
                transaction.set_rollback(True)
        expected = base.ok + STATE_REFUSALS.get((method, template), ())
        if answer.status_code not in expected:
            refused_base.append(
                f"{method.upper()} {template} as {role}: {answer.status_code} "
                f"{answer.content[:200]!r}"
            )
        targets = targets_of(operation, base, spec)
        if not targets:
            continue
        op_started = time.monotonic()
        found, count = fuzz_operation(client, operation, base, targets)
        problems += found
        total += count
        timings.append(f"{time.monotonic() - op_started:6.1f} s {count:5d} {method} {template}")
    elapsed = time.monotonic() - started
    print("\n".join(timings))
    print(f"{total} hostile requests in {elapsed:.1f} s on {connection.vendor}")
    assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems[:400])
    # the fuzzing reached the handlers: each valid request is accepted as it stands
    assert refused_base == [], "\n".join(refused_base)


@on_postgres
def test_the_same_fuzz_passes_on_sqlite(tmp_path: Path) -> None:
    run_on_sqlite(
        [f"{__file__}::test_every_field_of_every_operation_refuses_hostile_values"],
        tmp_path / "var",
    )
