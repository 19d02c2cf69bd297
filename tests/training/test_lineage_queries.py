"""The lineage endpoint reads a model's ancestors in one query, however long its parent chain
(it used to read one parent per query)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotation.roles import Role
from annotation.services import create_project, set_membership
from training.models import ArtifactKind, ModelArtifact
from training.round_selectors import artifact_ancestors

pytestmark = pytest.mark.django_db


def _chain(project: Any, length: int, tag: str) -> list[ModelArtifact]:
    """A shared base model and ``length - 1`` descendants, each the parent of the next."""
    chain: list[ModelArtifact] = []
    for k in range(length):
        chain.append(
            ModelArtifact.objects.create(
                name=f"{tag}-{k}",
                kind=ArtifactKind.POLICY,
                path=f"models/policy/{tag}-{k}",
                project=None if k == 0 else project,
                parent=chain[-1] if chain else None,
                size_bytes=1,
                sha256="0" * 64,
            )
        )
    return chain


def test_ancestors_come_nearest_first_and_a_cycle_stops_the_walk() -> None:
    project = create_project(name="lineage")
    chain = _chain(project, 4, "a")
    assert [a.pk for a in artifact_ancestors(chain[-1])] == [a.pk for a in reversed(chain[:-1])]
    assert artifact_ancestors(chain[0]) == []
    ModelArtifact.objects.filter(pk=chain[0].pk).update(parent=chain[-1])  # a cycle
    assert [a.pk for a in artifact_ancestors(chain[-1])] == [a.pk for a in reversed(chain[:-1])]


def test_lineage_costs_the_same_queries_for_a_long_chain_as_for_a_short_one(
    make_user: Any, client: Client
) -> None:
    project = create_project(name="lineage queries")
    engineer = make_user("engineer")
    set_membership(project=project, user=engineer, role=Role.ML_ENGINEER)
    client.force_login(engineer)
    short, long = _chain(project, 2, "short"), _chain(project, 8, "long")

    def lineage(artifact: ModelArtifact) -> tuple[list[int], int]:
        url = f"/api/projects/{project.id}/artifacts/{artifact.pk}/lineage/"
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, response.content
        return [a["id"] for a in response.json()["ancestors"]], len(queries.captured_queries)

    short_ids, short_queries = lineage(short[-1])
    long_ids, long_queries = lineage(long[-1])
    assert short_ids == [short[0].pk]
    assert long_ids == [a.pk for a in reversed(long[:-1])]
    assert long_queries == short_queries
