"""Project administration API: create, settings, archive, members, invite links."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation import queue
from annotation.models import Assignment, Project, ProjectInvite, ProjectMembership
from annotation.queue import JudgmentInput
from annotation.roles import Role
from annotation.services import create_project, set_membership
from tests.annotation.factories import seed_pairs

pytestmark = pytest.mark.django_db

STRONG = "violet-Harbour-93-lantern"


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, url: str, body: Any = None) -> Any:
    return client.post(url, body if body is not None else {}, content_type="application/json")


def patch(client: Client, url: str, body: Any) -> Any:
    return client.patch(url, body, content_type="application/json")


@pytest.fixture
def root(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", "root@example.org", STRONG)


# --- create ---------------------------------------------------------------------------------


def test_superuser_creates_a_project_and_becomes_its_admin(root: Any) -> None:
    response = post(signed_in(root), "/api/projects/", {"name": "Harmlessness", "overlap_k": 5})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["overlap_k"], body["role"]) == ("Harmlessness", 5, "project_admin")
    membership = ProjectMembership.objects.get(project_id=body["id"], user=root)
    assert membership.role == Role.PROJECT_ADMIN


def test_a_user_granted_add_project_may_create(make_user: Any) -> None:
    user = make_user("creator")
    client = signed_in(user)
    assert client.get("/api/auth/me/").json()["can_create_projects"] is False
    assert post(client, "/api/projects/", {"name": "x"}).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="add_project"))
    client = signed_in(get_user_model().objects.get(pk=user.pk))  # fresh permission cache
    assert client.get("/api/auth/me/").json()["can_create_projects"] is True
    response = post(client, "/api/projects/", {"name": "Mine"})
    assert response.status_code == 201
    assert response.json()["role"] == "project_admin"


def test_project_admins_and_annotators_without_the_permission_are_refused(
    project_admin: Any, annotator: Any
) -> None:
    for user in (project_admin, annotator):
        response = post(signed_in(user), "/api/projects/", {"name": "x"})
        assert response.status_code == 403
        assert response.json()["code"] == "cannot_create_projects"
        assert "annotation.add_project" in response.json()["message"]
    assert post(Client(), "/api/projects/", {"name": "x"}).status_code == 403
    assert Project.objects.filter(name="x").count() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"name": "ok", "overlap_k": 0}, "overlap_k"),
        ({"name": "ok", "overlap_k": "three"}, "overlap_k"),
        ({"name": "ok", "gold_rate": 1.5}, "gold_rate"),
        ({"name": "ok", "rationale_mode": "sometimes"}, "rationale_mode"),
        ({"name": "ok", "bogus": 1}, "bogus"),
        ([1, 2], "non_field_errors"),
    ],
)
def test_create_rejects_bad_input_with_the_field(root: Any, body: Any, field: str) -> None:
    response = post(signed_in(root), "/api/projects/", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["message"] or field in response.json()["extra"].get(
        "fields", {}
    )
    assert not Project.objects.exists()


# --- settings -------------------------------------------------------------------------------


def test_project_admin_edits_every_setting(project: Project, project_admin: Any) -> None:
    changes = {
        "name": "Renamed",
        "description": "New words",
        "instructions": "# Rules\n\nBe **kind**.",
        "overlap_k": 5,
        "lease_ttl_seconds": 900,
        "allow_tie": False,
        "allow_both_bad": False,
        "strength_scale": False,
        "rationale_mode": "required",
        "gold_rate": 0.1,
        "min_gold_accuracy": 0.8,
        "min_consensus_agreement": 0.5,
        "min_median_seconds": 2.5,
        "max_position_p_value": 0.01,
    }
    response = patch(signed_in(project_admin), f"/api/projects/{project.id}/", changes)
    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    for field, value in changes.items():
        assert getattr(project, field) == value
        assert response.json()[field] == value


@pytest.mark.parametrize(
    "body",
    [
        {"overlap_k": 0},
        {"overlap_k": 51},
        {"overlap_k": 2.5},
        {"overlap_k": True},
        {"overlap_k": "3"},
        {"overlap_k": 10**30},
        {"lease_ttl_seconds": 29},
        {"lease_ttl_seconds": 86401},
        {"gold_rate": -0.1},
        {"gold_rate": "NaN"},
        {"gold_rate": None},
        {"min_median_seconds": 1e308},
        {"allow_tie": "yes"},
        {"allow_tie": 1},
        {"rationale_mode": "maybe"},
        {"name": ""},
        {"name": None},
        {"instructions": ["a"]},
        {"instructions": "x" * 100_001},
        {"archived_at": None},
    ],
)
def test_settings_reject_bad_values(project: Project, project_admin: Any, body: Any) -> None:
    before = Project.objects.values().get(pk=project.pk)
    response = patch(signed_in(project_admin), f"/api/projects/{project.id}/", body)
    assert response.status_code == 400, response.content
    field = next(iter(body))
    assert field in response.json()["extra"]["fields"]
    assert Project.objects.values().get(pk=project.pk) == before


def test_nan_in_the_json_body_is_refused(project: Project, project_admin: Any) -> None:
    response = signed_in(project_admin).patch(
        f"/api/projects/{project.id}/", '{"gold_rate": NaN}', content_type="application/json"
    )
    assert response.status_code == 400


def test_settings_are_refused_to_other_roles(
    project: Project, annotator: Any, ml_engineer: Any, make_user: Any
) -> None:
    for user in (annotator, ml_engineer):
        response = patch(signed_in(user), f"/api/projects/{project.id}/", {"name": "hijacked"})
        assert response.status_code == 403
    outsider = signed_in(make_user("outsider"))
    assert patch(outsider, f"/api/projects/{project.id}/", {"name": "x"}).status_code == 404
    project.refresh_from_db()
    assert project.name == "Helpfulness"


# --- archive --------------------------------------------------------------------------------


def test_archive_hides_the_project_and_stops_its_queue(
    project: Project, project_admin: Any, annotator: Any
) -> None:
    seed_pairs(project, 3)
    admin = signed_in(project_admin)
    response = post(admin, f"/api/projects/{project.id}/archive/")
    assert response.status_code == 200 and response.json()["archived_at"] is not None
    assert post(admin, f"/api/projects/{project.id}/archive/").status_code == 409

    ann = signed_in(annotator)
    assert ann.get("/api/projects/").json()["count"] == 0
    listed = ann.get("/api/projects/?archived=include").json()["results"]
    assert [p["id"] for p in listed] == [project.id]
    assert ann.get("/api/projects/?archived=only").json()["count"] == 1
    assert ann.get(f"/api/projects/{project.id}/").status_code == 200
    refused = post(ann, f"/api/projects/{project.id}/queue/next/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "project_archived"

    assert post(admin, f"/api/projects/{project.id}/unarchive/").status_code == 200
    assert post(admin, f"/api/projects/{project.id}/unarchive/").status_code == 409
    assert post(ann, f"/api/projects/{project.id}/queue/next/").json()["item"] is not None


def test_archive_is_refused_to_annotators(project: Project, annotator: Any) -> None:
    assert post(signed_in(annotator), f"/api/projects/{project.id}/archive/").status_code == 403
    project.refresh_from_db()
    assert project.archived_at is None


# --- members --------------------------------------------------------------------------------


def judge(project: Project, user: Any, n: int) -> None:
    for _ in range(n):
        lease = queue.lease_next(project_id=project.id, user=user)
        assert lease is not None
        queue.submit_judgment(
            project_id=project.id,
            assignment_id=lease.id,
            user=user,
            data=JudgmentInput(choice="left", strength=2),
        )


def test_member_list_shows_roles_and_activity_in_one_query(
    project: Project, project_admin: Any, annotator: Any, make_user: Any, other_project: Project
) -> None:
    seed_pairs(project, 4)
    judge(project, annotator, 3)
    elsewhere = make_user("elsewhere")
    set_membership(project=other_project, user=annotator, role=Role.ANNOTATOR)
    set_membership(project=other_project, user=elsewhere, role=Role.ANNOTATOR)
    for i in range(5):
        set_membership(project=project, user=make_user(f"extra{i}"), role=Role.ANNOTATOR)
    client = signed_in(project_admin)
    client.get(f"/api/projects/{project.id}/members/")  # warm the session
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/projects/{project.id}/members/")
    rows = {row["username"]: row for row in response.json()}
    assert set(rows) == {"ann", "padmin", *(f"extra{i}" for i in range(5))}
    assert rows["ann"]["judgment_count"] == 3
    assert rows["ann"]["last_judgment_at"] is not None
    assert rows["padmin"]["role"] == "project_admin"
    assert (rows["padmin"]["judgment_count"], rows["padmin"]["last_judgment_at"]) == (0, None)
    membership_queries = [q for q in queries.captured_queries if "membership" in q["sql"]]
    # the permission check reads the caller's role; the list itself is one more query
    assert len(membership_queries) == 2, [q["sql"] for q in membership_queries]


def test_add_an_existing_user_by_username_or_email(
    project: Project, project_admin: Any, make_user: Any
) -> None:
    make_user("bob", email="bob@example.org")
    make_user("carol", email="Carol@Example.org")
    client = signed_in(project_admin)
    url = f"/api/projects/{project.id}/members/"
    response = post(client, url, {"user": "bob", "role": "annotator"})
    assert response.status_code == 201 and response.json()["username"] == "bob"
    response = post(client, url, {"user": "carol@example.org", "role": "ml_engineer"})
    assert response.status_code == 201 and response.json()["role"] == "ml_engineer"
    again = post(client, url, {"user": "bob", "role": "project_admin"})
    assert again.status_code == 409 and again.json()["code"] == "already_member"
    missing = post(client, url, {"user": "nobody", "role": "annotator"})
    assert missing.status_code == 404


def test_add_a_new_account(project: Project, project_admin: Any) -> None:
    client = signed_in(project_admin)
    url = f"/api/projects/{project.id}/members/"
    body = {"username": "dave", "email": "dave@example.org", "password": STRONG}
    response = post(client, url, body | {"role": "annotator"})
    assert response.status_code == 201
    dave = get_user_model().objects.get(username="dave")
    assert dave.check_password(STRONG)
    taken = post(client, url, body | {"role": "annotator"})
    assert taken.status_code == 409 and taken.json()["code"] == "username_taken"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "eve", "password": "123", "role": "annotator"},  # short, numeric
        {"username": "eve", "password": "password1", "role": "annotator"},  # common
        {"username": "eve!!", "password": STRONG, "role": "annotator"},  # bad username
        {"username": "eve", "password": STRONG, "email": "not-an-email", "role": "annotator"},
        {"username": "eve", "role": "annotator"},  # no password
        {"username": "eve", "password": STRONG, "role": "overlord"},
        {"user": "ann", "username": "eve", "password": STRONG, "role": "annotator"},
        {"role": "annotator"},
    ],
)
def test_add_member_rejects_bad_input(project: Project, project_admin: Any, body: Any) -> None:
    response = post(signed_in(project_admin), f"/api/projects/{project.id}/members/", body)
    assert response.status_code == 400, response.json()
    assert response.json()["message"]
    assert not get_user_model().objects.filter(username__startswith="eve").exists()


def test_change_role_and_the_last_admin_rule(
    project: Project, project_admin: Any, annotator: Any
) -> None:
    client = signed_in(project_admin)
    base = f"/api/projects/{project.id}/members/"
    demote = patch(client, f"{base}{project_admin.id}/", {"role": "annotator"})
    assert demote.status_code == 409 and demote.json()["code"] == "last_project_admin"
    remove = client.delete(f"{base}{project_admin.id}/")
    assert remove.status_code == 409
    promoted = patch(client, f"{base}{annotator.id}/", {"role": "project_admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "project_admin"
    # now there are two admins: one may step down
    assert patch(client, f"{base}{project_admin.id}/", {"role": "ml_engineer"}).status_code == 200
    assert ProjectMembership.objects.get(user=project_admin, project=project).role == "ml_engineer"
    assert patch(client, f"{base}{annotator.id}/", {"role": "nope"}).status_code in (400, 403)


def test_member_removal_releases_live_leases(
    project: Project, project_admin: Any, annotator: Any
) -> None:
    seed_pairs(project, 3)
    lease = queue.lease_next(project_id=project.id, user=annotator)
    assert lease is not None
    response = signed_in(project_admin).delete(
        f"/api/projects/{project.id}/members/{annotator.id}/"
    )
    assert response.status_code == 204
    assert not ProjectMembership.objects.filter(project=project, user=annotator).exists()
    assert Assignment.objects.get(pk=lease.id).status == "expired"
    assert project.comparisons.get(pk=lease.comparison_id).lease_count == 0
    again = signed_in(project_admin).delete(f"/api/projects/{project.id}/members/{annotator.id}/")
    assert again.status_code == 404


def test_members_are_refused_to_annotators_and_ml_engineers(
    project: Project, annotator: Any, ml_engineer: Any, project_admin: Any
) -> None:
    for user in (annotator, ml_engineer):
        client = signed_in(user)
        assert client.get(f"/api/projects/{project.id}/members/").status_code == 403
        body = {"user": user.username, "role": "project_admin"}
        assert post(client, f"/api/projects/{project.id}/members/", body).status_code == 403
        url = f"/api/projects/{project.id}/members/{project_admin.id}/"
        assert client.delete(url).status_code == 403
    assert ProjectMembership.objects.filter(project=project).count() == 3


# --- invites --------------------------------------------------------------------------------


def make_invite(client: Client, project: Project, **body: Any) -> dict[str, Any]:
    response = post(client, f"/api/projects/{project.id}/invites/", {"role": "annotator"} | body)
    assert response.status_code == 201, response.json()
    return dict(response.json())


def test_invite_stores_only_the_hash_and_lists_its_state(
    project: Project, project_admin: Any
) -> None:
    client = signed_in(project_admin)
    invite = make_invite(client, project)
    assert invite["path"] == f"/invites/{invite['token']}"
    assert invite["state"] == "active"
    lifetime = (
        timezone.now()
        + timedelta(days=7)
        - datetime.fromisoformat(invite["expires_at"].replace("Z", "+00:00"))
    )
    assert abs(lifetime.total_seconds()) < 60
    stored = ProjectInvite.objects.get(pk=invite["id"])
    assert invite["token"] not in stored.token_hash and len(stored.token_hash) == 64
    listed = client.get(f"/api/projects/{project.id}/invites/").json()
    assert [row["id"] for row in listed] == [invite["id"]]
    assert "token" not in listed[0]
    short = make_invite(client, project, expires_in_hours=2, role="ml_engineer")
    assert short["role"] == "ml_engineer"


@pytest.mark.parametrize(
    "body",
    [
        {"role": "king"},
        {"role": "annotator", "expires_in_hours": 0},
        {"role": "annotator", "expires_in_hours": 90 * 24 + 1},
        {"role": "annotator", "expires_in_hours": "soon"},
        {},
    ],
)
def test_invite_creation_rejects_bad_input(project: Project, project_admin: Any, body: Any) -> None:
    response = post(signed_in(project_admin), f"/api/projects/{project.id}/invites/", body)
    assert response.status_code == 400
    assert not ProjectInvite.objects.exists()


def test_invites_are_refused_to_annotators(project: Project, annotator: Any) -> None:
    client = signed_in(annotator)
    assert client.get(f"/api/projects/{project.id}/invites/").status_code == 403
    body = {"role": "project_admin"}
    assert post(client, f"/api/projects/{project.id}/invites/", body).status_code == 403


def test_anonymous_reads_an_invite_and_accepts_by_creating_an_account(
    project: Project, project_admin: Any
) -> None:
    invite = make_invite(signed_in(project_admin), project, role="ml_engineer")
    visitor = Client(enforce_csrf_checks=True)
    info = visitor.get(f"/api/invites/{invite['token']}/").json()
    assert info["project"] == {"id": project.id, "name": "Helpfulness"}
    assert (info["role"], info["valid"], info["reason"]) == ("ml_engineer", True, None)
    # the anonymous accept is CSRF-protected: without the token it is refused
    url = f"/api/invites/{invite['token']}/accept/"
    body = {"username": "newcomer", "password": STRONG}
    assert visitor.post(url, body, content_type="application/json").status_code == 403
    csrf = visitor.get("/api/auth/csrf/").json()["csrfToken"]
    weak = visitor.post(
        url, {"username": "newcomer", "password": "abc"}, "application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert weak.status_code == 400 and "password" in weak.json()["extra"]["fields"]
    response = visitor.post(url, body, "application/json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 201, response.json()
    assert response.json() == {
        "project_id": project.id,
        "role": "ml_engineer",
        "username": "newcomer",
    }
    me = visitor.get("/api/auth/me/").json()
    assert me["username"] == "newcomer"
    assert ProjectMembership.objects.get(project=project, user__username="newcomer").role == (
        "ml_engineer"
    )
    # one use only
    again = Client().post(
        url, {"username": "second", "password": STRONG}, content_type="application/json"
    )
    assert again.status_code == 410 and again.json()["code"] == "invite_used"
    assert not get_user_model().objects.filter(username="second").exists()
    info = Client().get(f"/api/invites/{invite['token']}/").json()
    assert (info["valid"], info["reason"]) == (False, "used")


def test_a_signed_in_user_accepts_and_joins(
    project: Project, project_admin: Any, make_user: Any, annotator: Any
) -> None:
    invite = make_invite(signed_in(project_admin), project)
    # a member already: 409, and the invite stays usable
    member = post(signed_in(annotator), f"/api/invites/{invite['token']}/accept/")
    assert member.status_code == 409
    frank = make_user("frank")
    response = post(signed_in(frank), f"/api/invites/{invite['token']}/accept/")
    assert response.status_code == 201
    assert ProjectMembership.objects.get(project=project, user=frank).role == "annotator"
    listed = signed_in(project_admin).get(f"/api/projects/{project.id}/invites/").json()
    assert (listed[0]["state"], listed[0]["used_by"]) == ("used", "frank")


def test_expired_revoked_and_unknown_invites_are_refused(
    project: Project, project_admin: Any, make_user: Any
) -> None:
    admin = signed_in(project_admin)
    expired = make_invite(admin, project)
    ProjectInvite.objects.filter(pk=expired["id"]).update(expires_at=timezone.now())
    revoked = make_invite(admin, project)
    assert admin.delete(f"/api/projects/{project.id}/invites/{revoked['id']}/").status_code == 204
    user = signed_in(make_user("gina"))
    for invite, code in ((expired, "invite_expired"), (revoked, "invite_revoked")):
        response = post(user, f"/api/invites/{invite['token']}/accept/")
        assert response.status_code == 410 and response.json()["code"] == code
        info = Client().get(f"/api/invites/{invite['token']}/").json()
        assert info["valid"] is False and info["reason"] in code
    assert post(user, "/api/invites/not-a-token/accept/").status_code == 404
    assert Client().get("/api/invites/not-a-token/").status_code == 404
    assert not ProjectMembership.objects.filter(project=project, user__username="gina").exists()


def test_revoking_a_used_invite_is_refused(
    project: Project, project_admin: Any, make_user: Any
) -> None:
    admin = signed_in(project_admin)
    invite = make_invite(admin, project)
    assert (
        post(signed_in(make_user("hal")), f"/api/invites/{invite['token']}/accept/").status_code
        == 201
    )
    response = admin.delete(f"/api/projects/{project.id}/invites/{invite['id']}/")
    assert response.status_code == 410


def test_an_invite_to_an_archived_project_is_refused(
    project: Project, project_admin: Any, make_user: Any
) -> None:
    admin = signed_in(project_admin)
    invite = make_invite(admin, project)
    post(admin, f"/api/projects/{project.id}/archive/")
    assert Client().get(f"/api/invites/{invite['token']}/").json()["reason"] == "archived"
    response = post(signed_in(make_user("ivy")), f"/api/invites/{invite['token']}/accept/")
    assert response.status_code == 409 and response.json()["code"] == "project_archived"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_accepts_let_exactly_one_join(make_user: Any) -> None:
    project = create_project(name="race")
    admin = make_user("race-admin")
    set_membership(project=project, user=admin, role=Role.PROJECT_ADMIN)
    invite = make_invite(signed_in(admin), project)
    users = [make_user(f"racer{i}") for i in range(8)]
    barrier = threading.Barrier(len(users) + 2)

    def accept(user: Any | None, name: str) -> int:
        client = signed_in(user) if user is not None else Client()
        body = {} if user is not None else {"username": name, "password": STRONG}
        barrier.wait()
        try:
            return int(post(client, f"/api/invites/{invite['token']}/accept/", body).status_code)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(len(users) + 2) as pool:
        futures = [pool.submit(accept, u, "") for u in users]
        futures += [pool.submit(accept, None, f"anon{i}") for i in range(2)]
        statuses = sorted(f.result() for f in futures)
    assert statuses == [201] + [410] * (len(users) + 1)
    joined = ProjectMembership.objects.filter(project=project, role=Role.ANNOTATOR).count()
    assert joined == 1
    assert get_user_model().objects.filter(username__startswith="anon").count() <= 1
