"""Gates a round passes before it publishes anything to the annotators.

A round that learned from too little data, trained a reward model no better than chance,
pushed its policy too far from its start, or samples degenerate text must stop with a clear
reason, not publish garbage into the annotators' queue. Each gate compares one measured value
with a threshold from the round's ``gates`` config (a threshold of 0 turns its gate off):

====================  ===========================================  =====================
gate                  measured                                     stops when
====================  ===========================================  =====================
``test_split``        rows of the export's test split              < ``min_test_rows``
``reward_accuracy``   the reward model's held-out accuracy         < ``min_reward_accuracy``
``policy_kl``         the policy's final KL from its start (nats)  > ``max_policy_kl``
``length_collapse``   new / previous mean response length (words)  < ``min_length_ratio``
``repetition``        mean share of repeated word 3-grams          > ``max_repetition``
``distinct_2``        distinct word bigrams / all (new samples)    < ``min_distinct_2``
``broken_text``       share with U+FFFD, lone surrogates, controls > ``max_broken_text``
====================  ===========================================  =====================

The sample gates run inside generation, after sampling and before the one transaction that
publishes the batch, so a stopped round has published nothing. A person may let a stopped
round go on ("publish anyway") with a recorded reason (:func:`training.rounds.override_gate`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from training.ml.config import Check, parse_dataclass


@dataclass(frozen=True)
class GateConfig:
    min_test_rows: int = field(
        default=10,
        metadata={"help": "Stop when the export's test split has fewer rows (0: off)."},
    )
    min_reward_accuracy: float = field(
        default=0.55,
        metadata={
            "help": "Stop when the reward model's held-out accuracy is below this "
            "(a reward model no better than chance teaches the policy noise; 0: off)."
        },
    )
    max_policy_kl: float = field(
        default=12.0,
        metadata={
            "help": "Stop when the policy's final KL from its starting point is above this "
            "(nats per response; 0: off)."
        },
    )
    min_length_ratio: float = field(
        default=0.4,
        metadata={
            "help": "Stop when the new policy's mean response length (words) is below this "
            "share of the previous policy's (0: off)."
        },
    )
    max_repetition: float = field(
        default=0.5,
        metadata={
            "help": "Stop when the mean share of repeated word 3-grams in a response is "
            "above this (0: off)."
        },
    )
    min_distinct_2: float = field(
        default=0.1,
        metadata={
            "help": "Stop when distinct word bigrams over all bigrams of the new samples "
            "fall below this (every response the same; 0: off)."
        },
    )
    max_broken_text: float = field(
        default=0.05,
        metadata={
            "help": "Stop when more than this share of the new samples holds U+FFFD (an "
            "invalid UTF-8 byte fragment), a lone surrogate or a control character (0: off)."
        },
    )


def _share(v: float) -> bool:
    return 0 <= v <= 1


GATE_CHECKS: dict[str, Check] = {
    "min_test_rows": (lambda v: 0 <= v <= 10**9, "must be an integer in 0 … 10^9"),
    "min_reward_accuracy": (_share, "must be in 0 … 1"),
    "max_policy_kl": (lambda v: 0 <= v <= 10**6, "must be in 0 … 10^6"),
    "min_length_ratio": (_share, "must be in 0 … 1"),
    "max_repetition": (_share, "must be in 0 … 1"),
    "min_distinct_2": (_share, "must be in 0 … 1"),
    "max_broken_text": (_share, "must be in 0 … 1"),
}


def parse_gates(raw: Any) -> GateConfig:
    """Validate a JSON object into a :class:`GateConfig`; every problem named by field."""
    return parse_dataclass(GateConfig, raw, GATE_CHECKS)


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict: what was measured, against which threshold, and why it stops."""

    gate: str
    value: float | None
    threshold: float
    passed: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class GateStopped(Exception):
    """A gate stopped the round; ``results`` are the gates that failed."""

    def __init__(self, results: Sequence[GateResult]) -> None:
        super().__init__("; ".join(r.reason for r in results))
        self.results = list(results)


def _at_least(gate: str, value: float | None, threshold: float, what: str) -> GateResult:
    passed = threshold == 0 or (value is not None and value >= threshold)
    shown = "none" if value is None else f"{value:.4g}"
    return GateResult(gate, value, threshold, passed, f"{what} is {shown}, below {threshold:g}")


def _at_most(gate: str, value: float | None, threshold: float, what: str) -> GateResult:
    passed = threshold == 0 or value is None or value <= threshold
    shown = "none" if value is None else f"{value:.4g}"
    return GateResult(gate, value, threshold, passed, f"{what} is {shown}, above {threshold:g}")


def split_gate(test_rows: int, gates: GateConfig) -> GateResult:
    return _at_least("test_split", test_rows, gates.min_test_rows, "the export's test split (rows)")


def reward_accuracy_gate(accuracy: float | None, gates: GateConfig) -> GateResult:
    return _at_least(
        "reward_accuracy",
        accuracy,
        gates.min_reward_accuracy,
        "the reward model's held-out accuracy",
    )


def policy_kl_gate(kl: float | None, gates: GateConfig) -> GateResult:
    return _at_most("policy_kl", kl, gates.max_policy_kl, "the policy's KL from its start")


# --------------------------------------------------------------------------- samples

WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
BROKEN = re.compile("[\ufffd\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def repetition(text: str) -> float:
    """Share of a response's word 3-grams that repeat an earlier one (0 for < 4 words)."""
    tokens = words(text)
    grams = [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
    if len(grams) < 2:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def distinct_2(texts: Sequence[str]) -> float | None:
    """Distinct word bigrams over all word bigrams of ``texts`` (None without bigrams)."""
    grams = [g for t in texts for g in zip(words(t), words(t)[1:], strict=False)]
    return len(set(grams)) / len(grams) if grams else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class SampleHealth:
    """What the sample gates measure on the new policy's samples (and the previous one's)."""

    samples: int
    mean_words: float | None
    previous_mean_words: float | None
    repetition: float | None
    distinct_2: float | None
    broken_text: float | None

    @classmethod
    def measure(cls, new: Sequence[str], previous: Sequence[str] = ()) -> SampleHealth:
        return cls(
            samples=len(new),
            mean_words=_mean([len(words(t)) for t in new]),
            previous_mean_words=_mean([len(words(t)) for t in previous]),
            repetition=_mean([repetition(t) for t in new]),
            distinct_2=distinct_2(new),
            broken_text=_mean([float(bool(BROKEN.search(t))) for t in new]),
        )

    @property
    def length_ratio(self) -> float | None:
        if not self.previous_mean_words or self.mean_words is None:
            return None
        return self.mean_words / self.previous_mean_words

    def results(self, gates: GateConfig) -> list[GateResult]:
        ratio = self.length_ratio
        return [
            GateResult(
                "length_collapse",
                ratio,
                gates.min_length_ratio,
                gates.min_length_ratio == 0 or ratio is None or ratio >= gates.min_length_ratio,
                f"the new policy's responses are {self.mean_words or 0:.3g} words long against "
                f"{self.previous_mean_words or 0:.3g} for the previous policy (ratio "
                f"{ratio if ratio is not None else 0:.3g}, below {gates.min_length_ratio:g})",
            ),
            _at_most(
                "repetition",
                self.repetition,
                gates.max_repetition,
                "the share of repeated word 3-grams",
            ),
            _at_least(
                "distinct_2",
                self.distinct_2,
                gates.min_distinct_2 if self.distinct_2 is not None else 0,
                "distinct word bigrams over all",
            ),
            _at_most(
                "broken_text",
                self.broken_text,
                gates.max_broken_text,
                "the share of samples with broken text (U+FFFD, surrogates, controls)",
            ),
        ]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"length_ratio": self.length_ratio}


def failed(results: Sequence[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.passed]


def check(results: Sequence[GateResult], overridden: Sequence[str] = ()) -> None:
    """Raise :class:`GateStopped` with every failed gate that was not overridden."""
    stopped = [r for r in failed(results) if r.gate not in overridden]
    if stopped:
        raise GateStopped(stopped)
