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


def _round_without_recorded_sides(
    project: Any, number: int, base: ModelArtifact, engineer: Any
) -> Any:
    """A published round whose batch predates ``metadata["response_sides"]``: its sides are
    known only from the artifact that generated each response."""
    from annotation.comparison_specs import GENERATED, PromptComparisons, ResponseSpec
    from annotation.models import BatchSource
    from annotation.publishing import publish_comparisons
    from training.models import RLHFRound

    policy = _chain(project, 2, f"round-{number}")[-1]
    texts = [(f"new {number}", policy.pk), (f"old {number}", base.pk)]
    published = publish_comparisons(
        project=project,
        source=BatchSource.GENERATION,
        name=f"round {number}",
        chunks=[
            [
                PromptComparisons(
                    external_id=f"q{number}",
                    messages=[{"role": "user", "content": f"question {number}"}],
                    metadata={},
                    responses=[
                        ResponseSpec(text, source=GENERATED, model_artifact_id=artifact)
                        for text, artifact in texts
                    ],
                    pairs=[(0, 1, "")],
                )
            ]
        ],
    )
    return RLHFRound.objects.create(
        project=project,
        number=number,
        config={},
        base_policy=base,
        reward_base=base,
        policy_artifact=policy,
        batch=published.batch,
        created_by=engineer,
    )


def test_the_rounds_list_reads_unrecorded_sides_for_all_rounds_at_once(
    make_user: Any, client: Client
) -> None:
    project = create_project(name="round sides")
    engineer = make_user("engineer")
    set_membership(project=project, user=engineer, role=Role.ML_ENGINEER)
    client.force_login(engineer)
    base = _chain(project, 1, "base")[0]
    url = f"/api/projects/{project.id}/rounds/"

    def listed() -> tuple[list[Any], int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, response.content
        return response.json()["results"], len(queries.captured_queries)

    _round_without_recorded_sides(project, 1, base, engineer)
    [one], one_round = listed()
    assert one["win_rate"]["n"] == 0  # nothing judged yet, but the sides were read
    for number in (2, 3, 4):
        _round_without_recorded_sides(project, number, base, engineer)
    rows, four_rounds = listed()
    assert [row["number"] for row in rows] == [4, 3, 2, 1]
    assert four_rounds == one_round
