"""Agreement statistics over judgments: pure functions of numpy arrays (no database).

Units are comparisons, coders are annotators, values are labels coded as small integers:
nominal over the choice (A / B / tie / both bad) and ordinal over the signed strength scale
(−4 … +4, 0 = tie; "both bad" has no place on it and is left out).

Krippendorff's alpha comes from the ``krippendorff`` package; its bootstrap confidence
interval resamples units. Units are grouped by their pattern of value counts (with k=3 and
nine values there are at most a few hundred patterns), so a bootstrap sample is one
multinomial draw over patterns and a thousand samples take milliseconds at any size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import krippendorff
import numpy as np
from numpy.typing import NDArray

Level = Literal["nominal", "ordinal"]
IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

# nominal codes
A, B, TIE, BOTH_BAD = 0, 1, 2, 3
NOMINAL_VALUES = 4
ORDINAL_VALUES = 9  # signed strength −4 … +4 stored as 0 … 8
NOT_ENOUGH_DATA = "not_enough_data"
#: Above this many pairable units the point estimate is computed over unit patterns (exactly
#: the package's formula, thousands of times faster) instead of unit by unit in the package.
PACKAGE_MAX_UNITS = 20_000


@dataclass(frozen=True)
class AlphaResult:
    value: float | None
    low: float | None
    high: float | None
    units: int  # units with at least two values (pairable)
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ordinal_codes(choice: IntArray, strength: IntArray) -> IntArray:
    """Signed strength as 0 … 8 (4 = tie); −1 for "both bad" (not on the scale).

    ``strength`` is 1 … 4, or 0 when the project has no strength scale (A/B then count ±1).
    """
    magnitude = np.where(strength > 0, strength, 1)
    signed = np.where(choice == A, magnitude, np.where(choice == B, -magnitude, 0))
    return np.where(choice == BOTH_BAD, -1, signed + 4).astype(np.int64)


def value_counts(units: IntArray, values: IntArray, n_values: int) -> IntArray:
    """Units × values matrix of how many coders gave each value (negative values skipped).

    ``units`` are dense indices 0 … U−1.
    """
    keep = values >= 0
    n_units = int(units.max()) + 1 if units.size else 0
    flat = np.bincount(units[keep] * n_values + values[keep], minlength=n_units * n_values)
    return flat.reshape(n_units, n_values).astype(np.int64)


def _patterns(counts: IntArray) -> tuple[IntArray, IntArray]:
    """Distinct rows of pairable units (two or more values) and how often each occurs."""
    pairable = counts[counts.sum(axis=1) >= 2]
    if pairable.size == 0:
        return pairable, np.zeros(0, dtype=np.int64)
    base = int(pairable.max()) + 1
    if base ** pairable.shape[1] < 2**62:  # encode each row as one integer: a fast 1-D unique
        powers = base ** np.arange(pairable.shape[1], dtype=np.int64)
        _keys, first, weights = np.unique(pairable @ powers, return_index=True, return_counts=True)
        return pairable[first].astype(np.int64), weights.astype(np.int64)
    rows, weights = np.unique(pairable, axis=0, return_counts=True)
    return rows.astype(np.int64), weights.astype(np.int64)


def _coincidences(rows: IntArray) -> FloatArray:
    """Per-pattern coincidence matrices (P × V × V)."""
    m = rows.sum(axis=1).astype(np.float64)
    outer = rows[:, :, None] * rows[:, None, :]
    diag = np.einsum("pv,vw->pvw", rows, np.eye(rows.shape[1]))
    return (outer - diag) / (m - 1)[:, None, None]


def _alpha_from_coincidence(o: FloatArray, level: Level) -> float:
    n_c = o.sum(axis=1)
    n = n_c.sum()
    v = len(n_c)
    if level == "nominal":
        delta = 1.0 - np.eye(v)
    else:
        cumulative = np.cumsum(n_c)
        idx = np.arange(v)
        lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
        between = cumulative[hi] - np.where(lo > 0, cumulative[lo - 1], 0)
        delta = (between - (n_c[lo] + n_c[hi]) / 2.0) ** 2
    expected = (np.outer(n_c, n_c) * delta).sum()
    if expected <= 0:
        return float("nan")
    return float(1.0 - (n - 1) * (o * delta).sum() / expected)


def alpha_with_ci(
    counts: IntArray,
    level: Level,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> AlphaResult:
    """Krippendorff's alpha (from the ``krippendorff`` package) with a bootstrap CI.

    Returns ``value=None`` with ``reason="not_enough_data"`` when no unit has two values or
    every value is identical (where alpha is undefined) — never raises for such data.
    """
    rows, weights = _patterns(counts)
    units = int(weights.sum())
    if units == 0:
        return AlphaResult(None, None, None, 0, NOT_ENOUGH_DATA)
    present = rows.sum(axis=0) > 0
    if present.sum() < 2:
        return AlphaResult(None, None, None, units, NOT_ENOUGH_DATA)
    per_pattern = _coincidences(rows)
    if units <= PACKAGE_MAX_UNITS:
        try:
            value = float(
                krippendorff.alpha(
                    value_counts=np.repeat(rows, weights, axis=0),
                    value_domain=list(range(counts.shape[1])),
                    level_of_measurement=level,
                )
            )
        except ValueError:
            return AlphaResult(None, None, None, units, NOT_ENOUGH_DATA)
    else:
        # Same formula (coincidences → alpha), summed over patterns instead of units; the
        # tests hold it equal to the package.
        value = _alpha_from_coincidence(
            np.tensordot(weights.astype(np.float64), per_pattern, axes=1), level
        )
    if not np.isfinite(value):
        return AlphaResult(None, None, None, units, NOT_ENOUGH_DATA)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(units, weights / units, size=n_boot).astype(np.float64)
    samples = np.array(
        [_alpha_from_coincidence(np.tensordot(w, per_pattern, axes=1), level) for w in draws]
    )
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return AlphaResult(round(value, 6), None, None, units)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return AlphaResult(round(value, 6), round(float(low), 6), round(float(high), 6), units)


def percent_agreement(counts: IntArray) -> float | None:
    """Share of agreeing pairs among all pairs of values within units."""
    m = counts.sum(axis=1)
    pairs = (m * (m - 1)).sum()
    if pairs == 0:
        return None
    return float((counts * (counts - 1)).sum() / pairs)


def cohen_kappa(first: IntArray, second: IntArray, n_values: int) -> float | None:
    """Cohen's kappa of two coders over the same units (None when undefined)."""
    n = len(first)
    if n == 0:
        return None
    table = np.bincount(first * n_values + second, minlength=n_values * n_values).reshape(
        n_values, n_values
    )
    observed = np.trace(table) / n
    expected = float((table.sum(axis=1) * table.sum(axis=0)).sum()) / (n * n)
    if expected >= 1.0:
        return None
    return float((observed - expected) / (1 - expected))


def pairwise_kappa(
    units: IntArray,
    coders: IntArray,
    values: IntArray,
    coder_ids: list[int],
    n_values: int,
    *,
    min_common: int = 10,
) -> tuple[list[list[float | None]], list[list[int]]]:
    """Kappa matrix (and common-unit counts) for the given coders; None below ``min_common``."""
    by_coder: dict[int, tuple[IntArray, IntArray]] = {}
    for coder in coder_ids:
        mask = coders == coder
        order = np.argsort(units[mask], kind="stable")
        by_coder[coder] = (units[mask][order], values[mask][order])
    size = len(coder_ids)
    matrix: list[list[float | None]] = [[None] * size for _ in range(size)]
    common: list[list[int]] = [[0] * size for _ in range(size)]
    for i, a in enumerate(coder_ids):
        ua, va = by_coder[a]
        common[i][i] = len(ua)
        matrix[i][i] = 1.0 if len(ua) >= min_common else None
        for j in range(i + 1, size):
            ub, vb = by_coder[coder_ids[j]]
            shared, ia, ib = np.intersect1d(ua, ub, assume_unique=True, return_indices=True)
            common[i][j] = common[j][i] = len(shared)
            if len(shared) >= min_common:
                kappa = cohen_kappa(va[ia], vb[ib], n_values)
                matrix[i][j] = matrix[j][i] = None if kappa is None else round(kappa, 4)
    return matrix, common


def leave_one_out_agreement(
    units: IntArray,
    values: IntArray,
    counts: IntArray,
    counted: NDArray[np.bool_] | None = None,
) -> NDArray[Any]:
    """Per judgment: 1.0 if it matches the majority of the *other* judgments of its unit,
    0.0 if not, NaN when the others have no clear majority (none, or a tie).

    ``counted`` marks the judgments that ``counts`` includes (default: all of them); a
    judgment left out of the counts (an excluded annotator's) is compared with all of them.
    """
    others = counts[units].astype(np.int64)
    own = np.arange(len(units)) if counted is None else np.nonzero(counted)[0]
    others[own, values[own]] -= 1
    top = others.max(axis=1)
    clear = (top > 0) & ((others == top[:, None]).sum(axis=1) == 1)
    majority = others.argmax(axis=1)
    return np.where(clear, (majority == values).astype(np.float64), np.nan)


def majority_vote(counts: IntArray) -> tuple[IntArray, FloatArray]:
    """Label per unit (−1 when tied or empty) and its share of the votes."""
    totals = counts.sum(axis=1)
    top = counts.max(axis=1)
    unique_top = (counts == top[:, None]).sum(axis=1) == 1
    labels = np.where((totals > 0) & unique_top, counts.argmax(axis=1), -1)
    share = np.where(totals > 0, top / np.maximum(totals, 1), 0.0)
    return labels.astype(np.int64), share.astype(np.float64)


@dataclass(frozen=True)
class PositionBias:
    left_share: float | None
    p_value: float | None
    decided: int


def position_bias(choice: IntArray, swapped: NDArray[np.bool_]) -> PositionBias:
    """Share of "left" picks among A/B choices, with a two-sided binomial test against 0.5."""
    decided = (choice == A) | (choice == B)
    n = int(decided.sum())
    if n == 0:
        return PositionBias(None, None, 0)
    left = ((choice == A) & ~swapped) | ((choice == B) & swapped)
    k = int((left & decided).sum())
    from scipy.stats import binomtest  # imported here: scipy is large, exports don't need it

    return PositionBias(k / n, float(binomtest(k, n, 0.5).pvalue), n)
