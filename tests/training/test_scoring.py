"""Scores of degenerate responses: an empty response never outscores a real one."""

from __future__ import annotations

from training.ml.scoring import floor_empty_responses


def test_an_empty_response_scores_below_the_lowest_real_one() -> None:
    scores, empty = floor_empty_responses([0.2, 9.0, -0.4, 7.5], ["warm", "", "rude", " \n"], 0.5)
    # the reward model liked the empty ones best (9.0, 7.5): they now rank last
    assert scores == [0.2, -0.9, -0.4, -0.9] and empty == 2


def test_no_empty_response_leaves_the_scores_alone() -> None:
    assert floor_empty_responses([3.0, -1.0], ["a", "b"], 1.0) == ([3.0, -1.0], 0)


def test_a_batch_of_only_empty_responses_scores_minus_the_penalty() -> None:
    assert floor_empty_responses([5.0, 6.0], ["", ""], 2.0) == ([-2.0, -2.0], 2)
