"""Every API endpoint × every role, enumerated from the URL conf: a new endpoint without a row
here fails the test. Refused roles get 403 (anonymous included: session authentication comes
first); allowed roles get past authorization (no 401/403, no server error); objects of
another project are never reachable through this project's URLs (404)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.services import issue_token
from annotation import queue
from annotation.export import create_export
from annotation.export_options import parse_export_options
from annotation.import_jobs import create_import_job
from annotation.importing import ImportOptions
from annotation.invites import create_invite, revoke_invite
from annotation.models import Comparison, Project
from annotation.roles import Role
from annotation.services import create_project, exclude_annotator, set_membership
from tests.annotation.factories import seed_pairs
from training.models import (
    ArtifactKind,
    ModelArtifact,
    ModelRegistration,
    RLHFRound,
    RunKind,
    TrainingRun,
)

pytestmark = pytest.mark.django_db

ROLES = (
    "anonymous",
    "annotator",
    "other_annotator",
    "project_admin",
    "other_admin",
    "ml_engineer",
    "superuser",
)
ANY = frozenset({"anonymous", *ROLES})
SIGNED_IN = frozenset(ROLES) - {"anonymous"}
ANNOTATOR = frozenset({"annotator", "superuser"})
ADMIN = frozenset({"project_admin", "superuser"})
ADMIN_OR_ML = frozenset({"project_admin", "ml_engineer", "superuser"})
ML = frozenset({"ml_engineer", "superuser"})
MEMBERS = frozenset({"annotator", "project_admin", "ml_engineer", "superuser"})
STAFF = frozenset({"superuser"})

# (route as in the URL conf, method) → roles allowed; every API route and method has a row.
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    ("api/auth/csrf/", "get"): ANY,
    ("api/auth/login/", "post"): ANY,
    ("api/auth/logout/", "post"): ANY,
    ("api/auth/me/", "get"): SIGNED_IN,
    ("api/auth/token/", "post"): ANY,
    ("api/auth/tokens/", "get"): SIGNED_IN,
    ("api/auth/tokens/", "post"): SIGNED_IN,
    ("api/auth/tokens/<id:token_id>/", "delete"): SIGNED_IN,  # another user's token: 404
    ("api/auth/logout-all/", "post"): SIGNED_IN,
    ("api/system/worker-ping/", "post"): STAFF,
    ("api/system/worker-ping/<uuid:task_id>/", "get"): STAFF,
    ("api/schema/", "get"): ANY,  # the API's shape is public; its data is not
    ("api/docs/", "get"): ANY,
    ("api/projects/", "get"): SIGNED_IN,
    ("api/projects/<id:project_id>/", "get"): MEMBERS,
    # annotating needs the annotator role itself: a superuser is refused by the queue
    ("api/projects/<id:project_id>/queue/next/", "post"): frozenset({"annotator"}),
    ("api/projects/<id:project_id>/progress/", "get"): ANNOTATOR,
    ("api/projects/<id:project_id>/assignments/<id:assignment_id>/submit/", "post"): ANNOTATOR,
    ("api/projects/<id:project_id>/assignments/<id:assignment_id>/skip/", "post"): ANNOTATOR,
    ("api/projects/<id:project_id>/assignments/<id:assignment_id>/release/", "post"): ANNOTATOR,
    ("api/projects/<id:project_id>/assignments/<id:assignment_id>/undo/", "post"): ANNOTATOR,
    ("api/projects/<id:project_id>/imports/", "post"): ADMIN,
    ("api/projects/<id:project_id>/quality/", "get"): ADMIN,
    ("api/projects/<id:project_id>/quality/recompute/", "post"): ADMIN,
    ("api/projects/<id:project_id>/exclusions/", "get"): ADMIN,
    ("api/projects/<id:project_id>/exclusions/", "post"): ADMIN,
    ("api/projects/<id:project_id>/exclusions/<id:exclusion_id>/revoke/", "post"): ADMIN,
    ("api/projects/<id:project_id>/annotators/<id:user_id>/", "get"): ADMIN,
    ("api/projects/<id:project_id>/exports/", "get"): ADMIN_OR_ML,
    ("api/projects/<id:project_id>/exports/", "post"): ADMIN_OR_ML,
    ("api/projects/<id:project_id>/exports/<id:export_id>/", "get"): ADMIN_OR_ML,
    ("api/projects/<id:project_id>/exports/<id:export_id>/files/<str:name>", "get"): ADMIN_OR_ML,
    ("api/projects/<id:project_id>/training-runs/", "get"): ML,
    ("api/projects/<id:project_id>/training-runs/", "post"): ML,
    ("api/projects/<id:project_id>/training-runs/<id:run_id>/", "get"): ML,
    ("api/projects/<id:project_id>/training-runs/<id:run_id>/cancel/", "post"): ML,
    ("api/projects/<id:project_id>/training-runs/<id:run_id>/metrics/", "get"): ML,
    ("api/projects/<id:project_id>/artifacts/", "get"): ML,
    ("api/projects/<id:project_id>/artifacts/", "post"): ML,  # register a model directory
    ("api/projects/<id:project_id>/artifact-registrations/", "get"): ML,
    ("api/projects/<id:project_id>/artifact-registrations/<id:registration_id>/", "get"): ML,
    ("api/projects/<id:project_id>/artifacts/<id:artifact_id>/lineage/", "get"): ML,
    ("api/projects/<id:project_id>/rounds/", "get"): ML,
    ("api/projects/<id:project_id>/rounds/", "post"): ML,
    ("api/projects/<id:project_id>/rounds/defaults/", "get"): ML,
    ("api/projects/<id:project_id>/rounds/<id:round_id>/", "get"): ML,
    ("api/projects/<id:project_id>/rounds/<id:round_id>/cancel/", "post"): ML,
    ("api/projects/<id:project_id>/rounds/<id:round_id>/retry/", "post"): ML,
    ("api/projects/<id:project_id>/rounds/<id:round_id>/override/", "post"): ML,
    ("api/projects/<id:project_id>/import-jobs/", "get"): ADMIN,
    ("api/projects/<id:project_id>/import-jobs/", "post"): ADMIN,
    ("api/projects/<id:project_id>/import-jobs/<id:job_id>/", "get"): ADMIN,
    ("api/projects/<id:project_id>/import-jobs/<id:job_id>/cancel/", "post"): ADMIN,
    ("api/projects/<id:project_id>/import-jobs/<id:job_id>/bad-lines", "get"): ADMIN,
    ("api/projects/<id:project_id>/data/prompts/", "get"): ADMIN_OR_ML,
    ("api/projects/<id:project_id>/data/comparisons/", "get"): ADMIN_OR_ML,
    ("api/projects/<id:project_id>/data/comparisons/<id:comparison_id>/", "get"): ADMIN_OR_ML,
    ("api/projects/<id:project_id>/data/judgments/", "get"): ADMIN_OR_ML,
    # project administration (creating a project needs superuser or annotation.add_project)
    ("api/projects/", "post"): STAFF,
    ("api/projects/<id:project_id>/", "patch"): ADMIN,
    ("api/projects/<id:project_id>/archive/", "post"): ADMIN,
    ("api/projects/<id:project_id>/unarchive/", "post"): ADMIN,
    ("api/projects/<id:project_id>/members/", "get"): ADMIN,
    ("api/projects/<id:project_id>/members/", "post"): ADMIN,
    ("api/projects/<id:project_id>/members/<id:user_id>/", "patch"): ADMIN,
    ("api/projects/<id:project_id>/members/<id:user_id>/", "delete"): ADMIN,
    ("api/projects/<id:project_id>/invites/", "get"): ADMIN,
    ("api/projects/<id:project_id>/invites/", "post"): ADMIN,
    ("api/projects/<id:project_id>/invites/<id:invite_id>/", "delete"): ADMIN,
    # an invite link is its own credential: anyone holding it may read and accept it
    ("api/invites/<str:token>/", "get"): ANY,
    ("api/invites/<str:token>/accept/", "post"): ANY,
}


SUBMIT = "api/projects/<id:project_id>/assignments/<id:assignment_id>/submit/"
# The hot path checks the role inside its transaction: a lease that is not the caller's is
# not found (404) rather than forbidden; everything else refuses with 403.
REFUSED_STATUS = {(SUBMIT, "post"): 404}
BODIES = {(SUBMIT, "post"): {"choice": "left", "strength": 3}}
BODIES[("api/projects/<id:project_id>/members/<id:user_id>/", "patch")] = {"role": "annotator"}


def api_routes() -> Iterator[tuple[str, str]]:
    """(route, method) of every API view in the URL conf."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, Any]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.callback

    for route, callback in walk(get_resolver().url_patterns, ""):
        if not route.startswith("api/"):
            continue
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        assert view is not None, route
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                yield route, method


def test_every_api_endpoint_has_a_row() -> None:
    routes = set(api_routes())
    assert routes - set(MATRIX) == set(), "API endpoints without a permission row"
    assert set(MATRIX) - routes == set(), "rows for endpoints that no longer exist"


class World:
    """Two projects with an object of every kind each, and a user per role."""

    def __init__(self, make_user: Any, django_user_model: Any) -> None:
        self.make_user = make_user
        self.project = create_project(name="mine", overlap_k=1)
        self.other = create_project(name="theirs", overlap_k=1)
        self.users: dict[str, Any] = {"anonymous": None}
        for role, project, kind in (
            ("annotator", self.project, Role.ANNOTATOR),
            ("other_annotator", self.other, Role.ANNOTATOR),
            ("project_admin", self.project, Role.PROJECT_ADMIN),
            ("other_admin", self.other, Role.PROJECT_ADMIN),
            ("ml_engineer", self.project, Role.ML_ENGINEER),
        ):
            self.users[role] = make_user(role)
            set_membership(project=project, user=self.users[role], role=kind)
        self.users["superuser"] = django_user_model.objects.create_superuser(
            "root", "root@example.org", "x"
        )
        self.ids = {
            "mine": self.objects(self.project, "mine"),
            "theirs": self.objects(self.other, "theirs"),
        }

    def objects(self, project: Project, tag: str) -> dict[str, Any]:
        seed_pairs(project, 4)
        judge = (
            self.users["annotator"] if project == self.project else self.users["other_annotator"]
        )
        for _ in range(2):
            lease = queue.lease_next(project_id=project.id, user=judge)
            assert lease is not None
            queue.submit_judgment(
                project_id=project.id,
                assignment_id=lease.id,
                user=judge,
                data=queue.JudgmentInput(choice="left", strength=3),
            )
        open_lease = queue.lease_next(project_id=project.id, user=judge)
        assert open_lease is not None
        admin = (
            self.users["project_admin"] if project == self.project else self.users["other_admin"]
        )
        export = create_export(project=project, options=parse_export_options({}), user=admin)
        excluded = self.make_user(f"excluded-{tag}")
        set_membership(project=project, user=excluded, role=Role.ANNOTATOR)
        exclusion = exclude_annotator(
            project=project, annotator_id=excluded.id, reason="test", by=admin
        )
        artifact = ModelArtifact.objects.create(
            name=f"{tag}-policy",
            kind=ArtifactKind.POLICY,
            path=f"models/policy/{tag}",
            project=project,
            size_bytes=1,
            sha256="0" * 64,
        )
        run = TrainingRun.objects.create(
            project=project,
            kind=RunKind.REWARD,
            config={},
            dataset_export=export,
            base_artifact=artifact,
            created_by=self.users["superuser"],
        )
        r = RLHFRound.objects.create(
            project=project,
            number=1,
            config={},
            base_policy=artifact,
            reward_base=artifact,
            created_by=self.users["superuser"],
        )
        # a revoked invite: accepting it answers 410 to everyone, so no role changes here
        invite = create_invite(project=project, role=Role.ANNOTATOR, by=admin)
        revoke_invite(project=project, invite_id=invite.invite.pk)
        registration = ModelRegistration.objects.create(
            project=project, path=f"/models/{tag}", kind=ArtifactKind.POLICY, name=tag
        )
        import_job = create_import_job(
            project=project,
            user=admin,
            upload=SimpleUploadedFile("data.jsonl", b"{}\n"),
            original_name="data.jsonl",
            options=ImportOptions(),
        )
        return {
            "project_id": project.id,
            "registration_id": registration.id,
            "assignment_id": open_lease.id,
            "exclusion_id": exclusion.id,
            "export_id": export.id,
            "name": "train.jsonl",
            "run_id": run.id,
            "artifact_id": artifact.id,
            "round_id": r.id,
            "task_id": uuid.uuid4(),
            "token_id": issue_token(user=self.users["superuser"]).token.pk,
            "job_id": import_job.id,
            "comparison_id": Comparison.objects.filter(project=project).values_list(
                "id", flat=True
            )[0],
            "user_id": excluded.id,
            "invite_id": invite.invite.pk,
            "token": invite.token,
        }


def url_for(route: str, ids: dict[str, Any], project_id: int) -> str:
    path = "/" + route
    for key, value in ids.items():
        for converter in ("id", "int", "str", "uuid"):
            path = path.replace(f"<{converter}:{key}>", str(value))
    return path.replace(f"/projects/{ids['project_id']}/", f"/projects/{project_id}/")


def call(client: Client, route: str, method: str, url: str) -> int:
    if method == "get":
        return client.get(url).status_code
    if method == "delete":
        return client.delete(url).status_code
    if method == "patch":
        body = BODIES.get((route, method), {})
        return client.patch(url, body, content_type="application/json").status_code
    body = BODIES.get((route, method), {})
    return client.post(url, body, content_type="application/json").status_code


@pytest.fixture
def world(make_user: Any, django_user_model: Any, settings: Any, tmp_path: Any) -> World:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    return World(make_user, django_user_model)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_what_its_row_allows(world: World, role: str) -> None:
    client = Client(enforce_csrf_checks=False)
    if world.users[role] is not None:
        client.force_login(world.users[role])
    mine = world.ids["mine"]
    wrong: list[str] = []
    logouts = ("api/auth/logout/", "api/auth/logout-all/")
    logout_last = sorted(MATRIX.items(), key=lambda row: (row[0][0] in logouts, row))
    for (route, method), allowed in logout_last:
        url = url_for(route, mine, mine["project_id"])
        status = call(client, route, method, url)
        refused = 403 if role == "anonymous" else REFUSED_STATUS.get((route, method), 403)
        if role in allowed:
            if status in (401, 403) or status >= 500:
                wrong.append(f"{method.upper()} {url}: {status}, expected access")
        elif status != refused and not (route.endswith("<id:project_id>/") and status == 404):
            wrong.append(f"{method.upper()} {url}: {status}, expected {refused}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("role", ["annotator", "project_admin", "ml_engineer", "superuser"])
def test_no_object_of_another_project_is_reachable_by_id(world: World, role: str) -> None:
    """This project's URL with the other project's object id: 404, whatever the role."""
    client = Client()
    client.force_login(world.users[role])
    mine, theirs = world.ids["mine"], world.ids["theirs"]
    wrong = []
    for (route, method), allowed in sorted(MATRIX.items()):
        if role not in allowed or "<id:project_id>" not in route:
            continue
        object_keys = [k for k in theirs if f":{k}>" in route and k not in ("project_id", "name")]
        if not object_keys:
            continue
        ids = mine | {k: theirs[k] for k in object_keys}
        url = url_for(route, ids, mine["project_id"])
        status = call(client, route, method, url)
        if status != 404:
            wrong.append(f"{method.upper()} {url}: {status}, expected 404")
    assert wrong == [], "\n".join(wrong)


def test_a_superuser_naming_a_project_that_does_not_exist_gets_404(world: World) -> None:
    """Superusers pass every role check without a membership: a missing project must still
    answer 404 on every project route, never an error from a view's lookup."""
    client = Client()
    client.force_login(world.users["superuser"])
    mine = world.ids["mine"]
    missing = mine["project_id"] + 10_000
    wrong = []
    for (route, method), allowed in sorted(MATRIX.items()):
        if "superuser" not in allowed or "<id:project_id>" not in route:
            continue
        url = url_for(route, mine | {"project_id": missing}, missing)
        status = call(client, route, method, url)
        if status != 404:
            wrong.append(f"{method.upper()} {url}: {status}, expected 404")
    assert wrong == [], "\n".join(wrong)
