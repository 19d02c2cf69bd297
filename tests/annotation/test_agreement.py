"""Agreement statistics on hand-made arrays, checked against published reference values."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from annotation import agreement as ag

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", 4 coders × 12 units
# (the example in the krippendorff package's documentation).
K_DATA = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


def reliability_to_counts(data: list[list[float]], n_values: int, offset: int = 1) -> np.ndarray:
    matrix = np.array(data, dtype=float)
    coders, units = np.nonzero(~np.isnan(matrix))
    values = matrix[coders, units].astype(np.int64) - offset
    return ag.value_counts(units.astype(np.int64), values, n_values)


def test_krippendorff_reference_example_nominal_and_ordinal() -> None:
    counts = reliability_to_counts(K_DATA, 5)
    nominal = ag.alpha_with_ci(counts, "nominal")
    ordinal = ag.alpha_with_ci(counts, "ordinal")
    assert nominal.value == pytest.approx(0.743, abs=5e-4)
    assert ordinal.value == pytest.approx(0.815, abs=5e-4)
    assert nominal.units == 11  # the unit coded once is not pairable
    assert nominal.low is not None and nominal.high is not None
    assert nominal.low <= nominal.value <= nominal.high


def test_pattern_formula_equals_the_package_on_random_data() -> None:
    rng = np.random.default_rng(3)
    for level, n_values in (("nominal", 4), ("ordinal", 9)):
        units = np.repeat(np.arange(500), 3)
        values = rng.integers(0, n_values, units.size)
        values[::7] = rng.integers(0, 2, values[::7].size)  # some structure
        counts = ag.value_counts(units, values, n_values)
        rows, weights = ag._patterns(counts)
        mine = ag._alpha_from_coincidence(
            np.tensordot(weights.astype(float), ag._coincidences(rows), axes=1), level
        )
        package = krippendorff.alpha(
            value_counts=counts, value_domain=list(range(n_values)), level_of_measurement=level
        )
        assert mine == pytest.approx(float(package), abs=1e-9)


def test_large_inputs_take_the_pattern_path_with_the_same_value(monkeypatch) -> None:
    counts = reliability_to_counts(K_DATA, 5)
    monkeypatch.setattr(ag, "PACKAGE_MAX_UNITS", 0)
    assert ag.alpha_with_ci(counts, "ordinal").value == pytest.approx(0.815, abs=5e-4)


def test_bootstrap_interval_narrows_with_more_units() -> None:
    rng = np.random.default_rng(0)

    def width(n_units: int) -> float:
        truth = rng.integers(0, 2, n_units)
        units = np.repeat(np.arange(n_units), 3)
        noisy = rng.random(units.size) < 0.2
        values = np.where(noisy, rng.integers(0, 4, units.size), np.repeat(truth, 3))
        result = ag.alpha_with_ci(ag.value_counts(units, values, 4), "nominal")
        assert result.low is not None and result.high is not None
        return result.high - result.low

    assert width(4000) < width(100) / 3


@pytest.mark.parametrize(
    "data",
    [
        [[1, 1, 1], [1, 1, 1]],  # every value identical
        [[1, NAN, NAN], [NAN, 2, NAN], [NAN, NAN, 1]],  # no unit with two coders
        [],
    ],
)
def test_not_enough_data_is_a_result_not_an_error(data: list[list[float]]) -> None:
    counts = reliability_to_counts(data, 4) if data else np.zeros((0, 4), dtype=np.int64)
    result = ag.alpha_with_ci(counts, "nominal")
    assert result.value is None
    assert result.reason == ag.NOT_ENOUGH_DATA


def test_percent_agreement() -> None:
    # unit 1: three agree (3 agreeing ordered pairs × 2); unit 2: 2 of 3 agree
    counts = np.array([[3, 0, 0, 0], [2, 1, 0, 0]])
    assert ag.percent_agreement(counts) == pytest.approx((6 + 2) / (6 + 6))
    assert ag.percent_agreement(np.array([[1, 0, 0, 0]])) is None


def test_cohen_kappa_published_example() -> None:
    # Wikipedia's "Cohen's kappa" worked example: 50 proposals, two readers;
    # yes/yes 20, yes/no 5, no/yes 10, no/no 15 → p_o = 0.7, p_e = 0.5, kappa = 0.4.
    first = np.array([0] * 20 + [0] * 5 + [1] * 10 + [1] * 15)
    second = np.array([0] * 20 + [1] * 5 + [0] * 10 + [1] * 15)
    assert ag.cohen_kappa(first, second, 2) == pytest.approx(0.4)
    assert ag.cohen_kappa(np.zeros(5, dtype=np.int64), np.zeros(5, dtype=np.int64), 2) is None


def test_pairwise_kappa_uses_only_common_units() -> None:
    units = np.array([0, 1, 2, 3, 0, 1, 2, 3, 9])
    coders = np.array([1, 1, 1, 1, 2, 2, 2, 2, 3])
    values = np.array([0, 1, 0, 1, 0, 1, 0, 0, 1])
    matrix, common = ag.pairwise_kappa(units, coders, values, [1, 2, 3], 2, min_common=2)
    assert common[0][1] == 4 and common[0][2] == 0
    assert matrix[0][1] == pytest.approx(ag.cohen_kappa(values[:4], values[4:8], 2), abs=1e-4)
    assert matrix[0][2] is None


def test_ordinal_codes_sign_the_strength() -> None:
    choice = np.array([ag.A, ag.B, ag.TIE, ag.BOTH_BAD, ag.A])
    strength = np.array([4, 2, 0, 0, 0])
    assert ag.ordinal_codes(choice, strength).tolist() == [8, 2, 4, -1, 5]


def test_leave_one_out_agreement() -> None:
    units = np.array([0, 0, 0, 1, 1])
    values = np.array([0, 0, 1, 0, 1])
    counts = ag.value_counts(units, values, 4)
    loo = ag.leave_one_out_agreement(units, values, counts)
    # unit 0: the two zeros each see {0, 1} → tie → NaN; the one sees {0, 0} → disagrees
    assert np.isnan(loo[0]) and np.isnan(loo[1]) and loo[2] == 0.0
    # unit 1: each sees one other, different value → disagree
    assert loo[3] == 0.0 and loo[4] == 0.0


def test_majority_vote_and_confidence() -> None:
    labels, share = ag.majority_vote(np.array([[2, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]))
    assert labels.tolist() == [0, -1, -1]
    assert share[0] == pytest.approx(2 / 3)


def test_position_bias_binomial_test() -> None:
    # 18 of 20 decided picks on the left: strongly biased (two-sided p ≈ 0.0004)
    choice = np.array([ag.A] * 18 + [ag.B] * 2 + [ag.TIE] * 5)
    swapped = np.zeros(25, dtype=bool)
    bias = ag.position_bias(choice, swapped)
    assert bias.left_share == pytest.approx(0.9)
    assert bias.p_value == pytest.approx(0.000402, abs=1e-5)
    # the same picks with the display swapped are all right-hand picks
    assert ag.position_bias(choice, ~swapped).left_share == pytest.approx(0.1)
    assert ag.position_bias(np.array([ag.TIE]), np.array([False])).p_value is None


def test_dawid_skene_discounts_a_spammer_and_pins_gold() -> None:
    from annotation.consensus import dawid_skene

    rng = np.random.default_rng(1)
    n_units = 300
    truth = rng.integers(0, 2, n_units)
    units, coders, values = [], [], []
    for u in range(n_units):
        for coder in (0, 1):  # two careful annotators, 90% right
            units.append(u)
            coders.append(coder)
            values.append(truth[u] if rng.random() < 0.9 else 1 - truth[u])
        for spammer in (2, 3, 4):  # three who always answer 0
            units.append(u)
            coders.append(spammer)
            values.append(0)
    u_arr, c_arr, v_arr = (np.array(x, dtype=np.int64) for x in (units, coders, values))
    majority, _ = ag.majority_vote(ag.value_counts(u_arr, v_arr, 2))
    result = dawid_skene(
        u_arr, c_arr, v_arr, 2, gold_units=np.array([0]), gold_values=np.array([1 - truth[0]])
    )
    ds_accuracy = float((result.labels[1:] == truth[1:]).mean())
    majority_accuracy = float((majority == truth).mean())
    assert majority_accuracy < 0.6  # the spammers outvote everyone
    assert ds_accuracy > 0.85
    assert result.labels[0] == 1 - truth[0]  # gold pinned even against the votes
    assert 0.5 <= result.confidence.min() and result.confidence.max() <= 1.0
    # the spammer's confusion matrix: says 0 whatever the truth
    assert result.confusion[2][1][0] > 0.9
    assert result.confusion[0][1][1] > 0.8


def test_second_reference_example_three_coders_fifteen_units() -> None:
    # The krippendorff package's own documented example (3 coders × 15 units):
    # nominal alpha 0.691358.
    data = [
        [NAN, NAN, NAN, NAN, NAN, 3, 4, 1, 2, 1, 1, 3, 3, NAN, 3],
        [1, NAN, 2, 1, 3, 3, 4, 3, NAN, NAN, NAN, NAN, NAN, NAN, NAN],
        [NAN, NAN, 2, 1, 3, 4, 4, NAN, 2, 1, 1, 3, 3, NAN, 4],
    ]
    counts = reliability_to_counts(data, 4)
    assert ag.alpha_with_ci(counts, "nominal").value == pytest.approx(0.691358, abs=1e-6)
