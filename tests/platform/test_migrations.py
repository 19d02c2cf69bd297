"""Migrations: complete, and applied on a real PostgreSQL with the queue's partial index."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration() -> None:
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db
def test_migrations_apply_on_postgresql_with_queue_index_and_constraints() -> None:
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'comparison_open_queue'")
        (indexdef,) = cursor.fetchone()
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conname IN "
            "('comparison_votes_within_k', 'assignment_once_per_annotator', "
            "'judgment_once_per_annotator', 'comparison_canonical_order')"
        )
        constraints = {row[0] for row in cursor.fetchall()}
    assert "WHERE" in indexdef and "judgment_count" in indexdef
    assert constraints == {
        "comparison_votes_within_k",
        "assignment_once_per_annotator",
        "judgment_once_per_annotator",
        "comparison_canonical_order",
    }
    out = io.StringIO()
    call_command("showmigrations", "--plan", stdout=out)
    assert "[ ]" not in out.getvalue()
