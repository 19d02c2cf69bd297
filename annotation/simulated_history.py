"""Simulated annotators judging a project over a past stretch of time, in this process.

The same decisions as :mod:`annotation.simulation` (a rule, noise, item-keyed draws), made
through the queue's own services — :func:`annotation.queue.lease_next` then
:func:`annotation.queue.submit_judgment` — with the clock of each call set to a moment of
the simulated past. Every invariant of the queue holds as for live annotators; the leases
and judgments simply carry past timestamps, so the quality dashboard's weekly history and
the throughput chart describe the simulated weeks. Used by ``manage.py seed_demo``.

Deterministic for a given seed and project contents: which annotator judges which pair
follows the schedule and the queue's order, and each answer's noise is drawn from a
generator keyed by the annotator's seed and the pair's texts (never by the display side,
which the queue draws at random).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Sum

from annotation.models import Comparison, Project
from annotation.queue import JudgmentInput, lease_next, submit_judgment
from annotation.simulation import (
    RULES,
    InvalidSimulationConfig,
    LabelScheme,
    SimulationConfig,
    decide,
    item_rng,
)

WORKDAY_START_HOUR = 8  # sessions start between 08:00 and 12:00 UTC
SESSION_SHARE = 0.85  # chance that an annotator works on a given weekday
PLAN_SLACK = 1.1  # planned judgments per judgment the queue needs (some find nothing left)


@dataclass(frozen=True)
class SimulatedAnnotator:
    """One annotator of the simulated past: who, how noisy, how fast."""

    user: Any
    noise: float  # probability of flipping the rule's answer (scaled by the noise trend)
    median_seconds: float  # typical time per judgment


@dataclass
class HistoryReport:
    judgments: int
    per_annotator: dict[str, int]
    first: datetime | None
    last: datetime | None
    agreement: float | None  # share of answers equal to the noiseless rule's
    choices: dict[str, int] = field(default_factory=dict)


def _remaining_votes(project: Project) -> int:
    needed = (
        Comparison.objects.filter(project=project, is_gold=False)
        .filter(judgment_count__lt=F("target_votes"))
        .aggregate(n=Sum(F("target_votes") - F("judgment_count")))["n"]
    )
    return int(needed or 0)


def _schedule(
    medians: Sequence[float], start: datetime, end: datetime, needed: int, rng: random.Random
) -> list[tuple[datetime, int, float]]:
    """(moment a lease is taken, annotator index, seconds to judge it), in time order:
    weekday sessions of consecutive judgments, enough of them (with slack) for ``needed``
    judgments. An annotator's seconds scatter around their median."""
    annotators = len(medians)
    sessions: list[tuple[datetime, int]] = []
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        if day.weekday() < 5:
            for index in range(annotators):
                if rng.random() < SESSION_SHARE:
                    offset = timedelta(hours=WORKDAY_START_HOUR, minutes=rng.randint(0, 240))
                    if start <= day + offset < end:
                        sessions.append((day + offset, index))
        day += timedelta(days=1)
    if not sessions:
        raise InvalidSimulationConfig(f"No weekday between {start} and {end} to work on.")
    per_session = math.ceil(needed * PLAN_SLACK / len(sessions))
    events: list[tuple[datetime, int, float]] = []
    for begin, index in sessions:
        moment = begin
        for _ in range(per_session):
            seconds = medians[index] * math.exp(rng.gauss(0.0, 0.35))
            events.append((moment, index, seconds))
            moment += timedelta(seconds=seconds + rng.uniform(2, 20))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


@transaction.atomic
def judge_over_time(
    *,
    project: Project,
    annotators: Sequence[SimulatedAnnotator],
    start: datetime,
    end: datetime,
    rule: str = "gold_words",
    seed: int = 0,
    noise_trend: tuple[float, float] = (1.0, 1.0),
) -> HistoryReport:
    """Judge every open slot of ``project``'s queue between ``start`` and ``end``.

    Each annotator is a project annotator. ``noise_trend`` scales every annotator's noise
    linearly from its first value (at ``start``) to its second (at ``end``): annotators who
    learn the guidelines over the weeks. Returns what was judged; the queue ends complete
    unless the schedule ran out first (the report's count says how far it got).
    """
    if not annotators:
        raise InvalidSimulationConfig("At least one annotator is needed.")
    if end <= start:
        raise InvalidSimulationConfig("end must be after start.")
    if rule not in RULES:
        raise InvalidSimulationConfig(f"unknown rule {rule!r}; known rules: {', '.join(RULES)}")
    rng = random.Random(seed)  # noqa: S311 - simulation
    medians = [a.median_seconds for a in annotators]
    events = _schedule(medians, start, end, _remaining_votes(project), rng)
    span = (end - start).total_seconds()
    exhausted: set[int] = set()
    counts: Counter[str] = Counter()
    choices: Counter[str] = Counter()
    agreeing = 0
    first: datetime | None = None
    last: datetime | None = None
    for moment, index, seconds in events:
        if index in exhausted:
            continue
        who = annotators[index]
        lease = lease_next(project_id=project.id, user=who.user, now=moment)
        if lease is None:
            exhausted.add(index)
            if len(exhausted) == len(annotators):
                break
            continue
        left, right = (
            (lease.content_b, lease.content_a)
            if lease.swapped
            else (lease.content_a, lease.content_b)
        )
        scale = noise_trend[0] + (noise_trend[1] - noise_trend[0]) * (
            (moment - start).total_seconds() / span
        )
        config = replace(
            SimulationConfig(noise_scope="item"), noise=min(1.0, max(0.0, who.noise * scale))
        )
        scheme = LabelScheme(
            allow_tie=lease.scheme.allow_tie,
            allow_both_bad=lease.scheme.allow_both_bad,
            strength_scale=lease.scheme.strength_scale,
            rationale_mode=lease.scheme.rationale_mode,
        )
        decision = decide(
            left=left,
            right=right,
            scheme=scheme,
            rule=RULES[rule],
            config=config,
            rng=item_rng(seed * 1000 + index, left, right),
        )
        submitted = moment + timedelta(seconds=seconds)
        submit_judgment(
            project_id=project.id,
            assignment_id=lease.id,
            user=who.user,
            data=JudgmentInput(
                choice=decision.choice,
                strength=decision.strength,
                rationale=(
                    f"Simulated annotator (rule {rule})."
                    if scheme.rationale_mode == "required"
                    else ""
                ),
                time_taken_ms=int(seconds * 1000),
            ),
            now=submitted,
        )
        counts[who.user.username] += 1
        choices[decision.choice] += 1
        agreeing += decision.choice == decision.rule_choice
        first = first or submitted
        last = submitted
    total = sum(counts.values())
    return HistoryReport(
        judgments=total,
        per_annotator=dict(counts),
        first=first,
        last=last,
        agreement=round(agreeing / total, 4) if total else None,
        choices=dict(sorted(choices.items())),
    )
