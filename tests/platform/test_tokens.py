"""API tokens: stored hashed, expiring, revoked by a password change and by "log out
everywhere", listed and revoked by their owner only."""

from __future__ import annotations

import importlib
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.keys import hash_key
from accounts.models import ApiToken
from accounts.services import issue_token
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def me(key: str) -> int:
    return Client().get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token {key}").status_code


def test_a_token_is_stored_only_as_its_hash(make_user: Any) -> None:
    user = make_user("hashed")
    response = Client().post(
        "/api/auth/token/",
        {"username": "hashed", "password": PASSWORD, "name": "laptop"},
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    key = body["token"]
    stored = ApiToken.objects.get(user=user)
    assert stored.key_hash == hash_key(key) != key and stored.name == "laptop"
    assert body["prefix"] == key[:8] == stored.prefix
    # nothing in the row is the secret: a copy of the table logs nobody in
    for value in ApiToken.objects.filter(user=user).values().first().values():  # type: ignore[union-attr]
        assert str(value) != key
    assert me(key) == 200
    assert me(stored.key_hash) in (401, 403)


def test_tokens_expire_after_the_configured_lifetime(make_user: Any, settings: Any) -> None:
    settings.PREFLAB_TOKEN_TTL = 3600
    issued = issue_token(user=make_user("expiring"))
    assert issued.token.expires_at is not None
    assert me(issued.key) == 200
    ApiToken.objects.filter(pk=issued.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = Client().get("/api/auth/me/", HTTP_AUTHORIZATION=f"Token {issued.key}")
    assert response.status_code in (401, 403) and "expired" in response.json()["message"]
    settings.PREFLAB_TOKEN_TTL = 0
    assert issue_token(user=make_user("forever")).token.expires_at is None


def test_a_password_change_revokes_every_token(make_user: Any) -> None:
    user = make_user("changer")
    keys = [issue_token(user=user).key for _ in range(2)]
    other = issue_token(user=make_user("bystander")).key
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])  # a save that leaves the password alone
    assert [me(k) for k in keys] == [200, 200]
    user.set_password("a whole new secret")
    user.save()
    assert all(me(k) in (401, 403) for k in keys)
    assert me(other) == 200


def test_owners_list_and_revoke_their_tokens_and_nobody_elses(make_user: Any) -> None:
    owner, stranger = make_user("owner"), make_user("stranger")
    client = Client()
    client.force_login(owner)
    created = client.post("/api/auth/tokens/", {"name": "ci"}, content_type="application/json")
    assert created.status_code == 201 and created.json()["token"]
    key = created.json()["token"]
    theirs = issue_token(user=stranger, name="theirs")
    listed = client.get("/api/auth/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["ci"] and "token" not in listed[0]
    # another user's token id answers as a missing one, and stays
    assert client.delete(f"/api/auth/tokens/{theirs.token.pk}/").status_code == 404
    assert ApiToken.objects.filter(pk=theirs.token.pk).exists()
    assert client.delete(f"/api/auth/tokens/{created.json()['id']}/").status_code == 204
    assert me(key) in (401, 403)
    assert client.get("/api/auth/tokens/").json()["results"] == []


def test_log_out_everywhere_revokes_tokens_and_ends_every_session(make_user: Any) -> None:
    user = make_user("everywhere")
    key = issue_token(user=user).key
    here, elsewhere = Client(), Client()
    here.force_login(user)
    elsewhere.force_login(user)
    assert elsewhere.get("/api/auth/me/").status_code == 200
    assert here.post("/api/auth/logout-all/").status_code == 204
    assert me(key) in (401, 403)
    assert here.get("/api/auth/me/").status_code == 403
    assert elsewhere.get("/api/auth/me/").status_code == 403


def test_tokens_issued_in_clear_before_are_carried_over_as_hashes(make_user: Any) -> None:
    user = make_user("legacy")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamp with time zone NOT NULL, user_id bigint NOT NULL)"
            if connection.vendor == "postgresql"
            else "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created datetime NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            ["f" * 40, timezone.now(), user.pk],
        )
    try:
        migration = importlib.import_module("accounts.migrations.0002_hash_existing_tokens")
        from django.apps import apps

        migration.forwards(apps, SimpleNamespace(connection=connection))
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM authtoken_token")
            assert cursor.fetchone()[0] == 0  # no clear-text copy is left
        assert me("f" * 40) == 200  # the old token still works
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE authtoken_token")
