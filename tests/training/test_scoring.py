"""Scores of degenerate responses: an empty response never outscores a real one."""

from __future__ import annotations

import pytest

from training.ml.scoring import floor_empty_responses


def test_an_empty_response_scores_below_the_lowest_real_one() -> None:
    scores, empty = floor_empty_responses([0.2, 9.0, -0.4, 7.5], ["warm", "", "rude", " \n"], 0.5)
    # the reward model liked the empty ones best (9.0, 7.5): they now rank last
    assert scores == [0.2, -0.9, -0.4, -0.9] and empty == 2


def test_no_empty_response_leaves_the_scores_alone() -> None:
    assert floor_empty_responses([3.0, -1.0], ["a", "b"], 1.0) == ([3.0, -1.0], 0)


def test_a_batch_of_only_empty_responses_scores_minus_the_penalty() -> None:
    assert floor_empty_responses([5.0, 6.0], ["", ""], 2.0) == ([-2.0, -2.0], 2)


def test_standardized_members_differ_only_where_they_disagree() -> None:
    from training.ml.scoring import EnsembleScores, Standardization

    truth = [0.5, -1.0, 2.0, 0.0, -0.5]
    # three members that agree on every text but sit at other offsets and scales
    members = [[2.0 * t + 3.0 for t in truth], [t - 4.0 for t in truth], [0.5 * t for t in truth]]
    raw = EnsembleScores.of(members)
    assert min(raw.std) > 1.0  # offsets read as disagreement

    standardization = Standardization.fit(members)
    scores = EnsembleScores.of(standardization.apply(members))
    assert max(scores.std) < 1e-9  # they agree, and now say so
    assert sum(scores.mean) == pytest.approx(0.0, abs=1e-9)
    # the members' average scale is kept, so score differences stay on the reward's scale
    expected_scale = sum(standardization.stds) / 3
    spread = (sum(m * m for m in scores.mean) / len(truth)) ** 0.5
    assert spread == pytest.approx(expected_scale)
    assert scores.per_text(1) == pytest.approx((scores.mean[1],) * 3)
