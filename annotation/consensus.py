"""Consensus per comparison: majority vote (in :mod:`annotation.agreement`) and Dawid–Skene
via ``crowd-kit``, with gold items pinned to their known label. Pure: arrays in, arrays out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene
from numpy.typing import NDArray

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class DawidSkeneResult:
    labels: IntArray  # per unit 0 … U−1; −1 for units without judgments
    confidence: NDArray[np.float64]  # posterior probability of the label
    confusion: dict[int, list[list[float]]]  # coder → P(observed | true), true × observed


def dawid_skene(
    units: IntArray,
    coders: IntArray,
    values: IntArray,
    n_values: int,
    *,
    gold_units: IntArray | None = None,
    gold_values: IntArray | None = None,
    n_iter: int = 50,
) -> DawidSkeneResult:
    """Dawid–Skene EM over (unit, coder, value) triples; gold units are pinned."""
    n_units = int(units.max()) + 1 if units.size else 0
    labels = np.full(n_units, -1, dtype=np.int64)
    confidence = np.zeros(n_units, dtype=np.float64)
    if units.size == 0:
        return DawidSkeneResult(labels, confidence, {})
    frame = pd.DataFrame({"task": units, "worker": coders, "label": values})
    true_labels = None
    if gold_units is not None and gold_values is not None and gold_units.size:
        true_labels = pd.Series(gold_values, index=gold_units)
    model = DawidSkene(n_iter=n_iter, tol=1e-5)
    proba = model.fit_predict_proba(frame, true_labels=true_labels)
    columns = np.array(proba.columns, dtype=np.int64)
    matrix = proba.to_numpy()
    tasks = proba.index.to_numpy().astype(np.int64)
    best = matrix.argmax(axis=1)
    labels[tasks] = columns[best]
    confidence[tasks] = matrix[np.arange(len(tasks)), best]
    confusion: dict[int, list[list[float]]] = {}
    errors = model.errors_
    assert errors is not None  # set by fit
    for coder in np.unique(coders):
        table = np.zeros((n_values, n_values))
        block = errors.loc[coder]  # index: observed label, columns: true label
        for observed, row in block.iterrows():
            for true_label, p in row.items():
                table[int(true_label), int(observed)] = float(p)
        confusion[int(coder)] = np.round(table, 4).tolist()
    return DawidSkeneResult(labels, confidence, confusion)
