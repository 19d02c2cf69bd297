"""The annotator simulator: its decisions, runs against the live server over real HTTP (the
gold rule decides, noise and position bias show), the command, and HTTP error handling
against a scripted fake server."""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from annotation.importing import ImportOptions, import_comparisons
from annotation.models import Assignment, AssignmentStatus, Choice, Comparison, Judgment, Project
from annotation.presenters import display_choice
from annotation.services import create_project
from annotation.simulation import (
    RULES,
    InvalidSimulationConfig,
    LabelScheme,
    Rule,
    SimulationConfig,
    decide,
    item_rng,
    simulate,
    strength_for_gap,
)
from tests.annotation.factories import jsonl
from training.ml.synthetic import gold_score, random_answer

live = pytest.mark.django_db(transaction=True)
FAST = {"retry_backoff_s": 0.01}


def word_project(n: int, *, overlap_k: int = 3, seed: int = 0, **options: Any) -> Project:
    """A project whose responses are word sequences of the synthetic gold task."""
    project = create_project(name=f"Simulated {n}", overlap_k=overlap_k, **options)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a = random_answer(rng)
        b = random_answer(rng)
        while b == a:
            b = random_answer(rng)
        rows.append({"id": f"s{i}", "prompt": "Say something.", "response_a": a, "response_b": b})
    report = import_comparisons(project=project, stream=jsonl(*rows), options=ImportOptions())
    assert report.comparisons_created == n
    return project


def rule_choice(judgment: Judgment) -> str:
    """The gold rule's answer, in canonical A / B terms, for the judged comparison."""
    a = gold_score(judgment.comparison.response_a.content)
    b = gold_score(judgment.comparison.response_b.content)
    return Choice.A if a > b else Choice.B if b > a else Choice.TIE


def judgments(project: Project) -> list[Judgment]:
    return list(
        Judgment.objects.filter(project=project).select_related(
            "comparison__response_a", "comparison__response_b", "annotator"
        )
    )


# --- deciding (no server) ----------------------------------------------------------------------


def test_decide_prefers_the_higher_score_with_strength_growing_with_the_gap() -> None:
    rule, scheme, rng = RULES["gold_words"], LabelScheme(), random.Random(0)
    config = SimulationConfig()
    close = decide(
        left="kind river", right="river river", scheme=scheme, rule=rule, config=config, rng=rng
    )
    far = decide(
        left="rude dull", right="kind warm", scheme=scheme, rule=rule, config=config, rng=rng
    )
    assert (close.choice, close.strength) == ("left", 4)  # gap 0.5: significant
    assert (far.choice, far.strength) == ("right", 4)
    assert [strength_for_gap(g, 0.5) for g in (0.0, 0.1, 0.15, 0.3, 0.6)] == [1, 1, 2, 3, 4]


def test_equal_scores_are_a_tie_where_allowed_else_a_side() -> None:
    rule, rng, config = RULES["gold_words"], random.Random(0), SimulationConfig()
    tie = decide(
        left="kind rude", right="river", scheme=LabelScheme(), rule=rule, config=config, rng=rng
    )
    assert (tie.choice, tie.strength) == ("tie", None)
    no_ties = LabelScheme(allow_tie=False)
    sides = {
        decide(
            left="river", right="stone", scheme=no_ties, rule=rule, config=config, rng=rng
        ).choice
        for _ in range(40)
    }
    assert sides == {"left", "right"}


def test_full_noise_flips_every_answer_and_full_bias_says_left() -> None:
    rule, rng = RULES["longer"], random.Random(0)
    noisy = SimulationConfig(noise=1.0)
    biased = SimulationConfig(position_bias=1.0, noise=1.0)
    for _ in range(20):
        d = decide(left="a b c", right="a", scheme=LabelScheme(), rule=rule, config=noisy, rng=rng)
        assert (d.choice, d.rule_choice) == ("right", "left")
        d = decide(left="a", right="a b c", scheme=LabelScheme(), rule=rule, config=biased, rng=rng)
        assert (d.choice, d.rule_choice) == ("left", "right")


def test_item_scoped_noise_answers_a_pair_alike_whichever_way_it_is_shown() -> None:
    rule, pairs_rng = RULES["gold_words"], random.Random(4)
    config = SimulationConfig(noise=0.3, noise_scope="item", seed=7)
    no_ties = LabelScheme(allow_tie=False)
    flipped = 0
    for _ in range(200):
        a, b = random_answer(pairs_rng), random_answer(pairs_rng)
        shown = decide(
            left=a, right=b, scheme=no_ties, rule=rule, config=config, rng=item_rng(7, a, b)
        )
        mirrored = decide(
            left=b, right=a, scheme=no_ties, rule=rule, config=config, rng=item_rng(7, b, a)
        )
        # the same canonical answer (and strength) on either side of the screen
        assert {shown.choice, mirrored.choice} == {"left", "right"}
        assert shown.strength == mirrored.strength
        flipped += shown.choice != shown.rule_choice
    # noise still flips about 30 % of the pairs (binomial: P(outside 35–85 of 200) < 1e-4)
    assert 35 <= flipped <= 85
    # another seed flips other pairs
    assert item_rng(7, "x", "y").random() != item_rng(8, "x", "y").random()
    with pytest.raises(InvalidSimulationConfig, match="noise_scope"):
        SimulationConfig(noise_scope="annotator")


def test_both_bad_below_a_threshold_where_allowed() -> None:
    config, rule = SimulationConfig(both_bad_below=0.0), RULES["gold_words"]
    d = decide(
        left="rude dull",
        right="cold river",
        scheme=LabelScheme(),
        rule=rule,
        config=config,
        rng=random.Random(0),
    )
    assert (d.choice, d.strength) == ("both_bad", None)
    d = decide(
        left="rude dull",
        right="cold river",
        scheme=LabelScheme(allow_both_bad=False),
        rule=rule,
        config=config,
        rng=random.Random(0),
    )
    assert d.choice == "right"


# --- against the live server -------------------------------------------------------------------


@live
def test_noiseless_annotators_fill_every_comparison_with_the_rules_choice(
    live_server: Any,
) -> None:
    project = word_project(12, overlap_k=3)
    config = SimulationConfig(annotators=4, prefix="clean")
    report = simulate(base_url=live_server.url, project_id=project.pk, config=config)

    rows = judgments(project)
    assert report.errors == {} and report.annotator_errors == {}
    assert report.total == len(rows) == 12 * 3
    assert set(report.stopped.values()) == {"queue_empty"}
    assert report.agreement == 1.0
    assert all(c.judgment_count == 3 for c in Comparison.objects.filter(project=project))
    assert Counter((j.annotator_id, j.comparison_id) for j in rows).most_common(1)[0][1] == 1
    assert all(j.choice == rule_choice(j) for j in rows)
    assert report.per_annotator == dict(Counter(j.annotator.username for j in rows))
    assert sorted(report.per_annotator) == ["clean-1", "clean-2", "clean-3", "clean-4"]
    strengths = {j.strength for j in rows if j.choice != Choice.TIE}
    assert strengths <= {1, 2, 3, 4} and len(strengths) > 1


@live
def test_noise_lowers_agreement_with_the_rule(live_server: Any) -> None:
    project = word_project(35, overlap_k=3, seed=1)
    config = SimulationConfig(annotators=3, noise=0.3, seed=1, prefix="noisy")
    report = simulate(base_url=live_server.url, project_id=project.pk, config=config)

    rows = judgments(project)
    assert report.total == len(rows) == 105
    assert report.agreement is not None and 0.5 < report.agreement < 0.9
    in_db = sum(j.choice == rule_choice(j) for j in rows) / len(rows)
    assert in_db == pytest.approx(report.agreement, abs=1e-4)


@live
def test_item_scoped_noise_labels_do_not_depend_on_who_judged_what(live_server: Any) -> None:
    labels = []
    for attempt in range(2):
        project = word_project(40, overlap_k=1, seed=5)
        config = SimulationConfig(
            annotators=4, noise=0.2, noise_scope="item", seed=3, prefix=f"item{attempt}"
        )
        report = simulate(base_url=live_server.url, project_id=project.pk, config=config)
        assert report.total == 40 and not report.errors
        labels.append(
            {
                (j.comparison.response_a.content, j.comparison.response_b.content): (
                    j.choice,
                    j.strength,
                )
                for j in judgments(project)
            }
        )
    # four threads share the 40 pairs differently each time, and sides are swapped at random
    assert labels[0] == labels[1]
    assert sum(choice != "tie" for choice, _ in labels[0].values()) > 20


@live
def test_full_position_bias_answers_left_as_displayed(live_server: Any) -> None:
    project = word_project(10, overlap_k=2, seed=2)
    config = SimulationConfig(annotators=2, position_bias=1.0, prefix="lefty")
    report = simulate(base_url=live_server.url, project_id=project.pk, config=config)

    rows = Judgment.objects.filter(project=project)
    assert report.total == rows.count() == 20
    assert report.left_share == 1.0 and report.choices == {"left": 20}
    assert all(display_choice(j.choice, j.swapped) == "left" for j in rows)
    # the queue swaps sides at random, so "left" is stored as A for some and B for others
    assert {j.choice for j in rows} == {Choice.A, Choice.B}


@live
def test_max_judgments_caps_the_total_and_leaves_no_lease(live_server: Any) -> None:
    project = word_project(10, overlap_k=3, seed=3)
    config = SimulationConfig(annotators=3, max_judgments=5, prefix="capped")
    report = simulate(base_url=live_server.url, project_id=project.pk, config=config)

    assert report.total == Judgment.objects.filter(project=project).count() == 5
    assert set(report.stopped.values()) == {"max_judgments"}
    assert not Assignment.objects.filter(project=project, status=AssignmentStatus.ACTIVE).exists()


@live
def test_command_runs_against_the_live_server_and_prints_json(live_server: Any) -> None:
    project = word_project(4, overlap_k=2, seed=4)
    out = io.StringIO()
    call_command(
        "simulate_annotators",
        str(project.pk),
        "--url",
        live_server.url,
        "--annotators",
        "2",
        "--seed",
        "4",
        "--prefix",
        "cmd",
        stdout=out,
    )
    report = json.loads(out.getvalue())
    assert report["total"] == Judgment.objects.filter(project=project).count() == 8
    assert report["per_annotator"] == {"cmd-1": 4, "cmd-2": 4}
    assert report["agreement"] == 1.0
    assert {"errors", "elapsed_s", "judgments_per_s", "left_share", "stopped"} <= set(report)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["999999"], "No project with id 999999"),
        (["--rule", "vibes"], "unknown rule 'vibes'"),
        (["--noise", "1.5"], "noise must be between 0 and 1"),
        (["--position-bias", "-0.1"], "position_bias must be between 0 and 1"),
        (["--url", "ftp://example"], r"Not an http\(s\) URL"),
    ],
)
def test_bad_inputs_are_command_errors(args: list[str], message: str) -> None:
    project = create_project(name="Bad inputs")
    positional = [] if args[0].isdigit() else [str(project.pk)]
    with pytest.raises(CommandError, match=message):
        call_command("simulate_annotators", *positional, *args, stdout=io.StringIO())


def test_a_registered_rule_is_accepted() -> None:
    RULES["shorter"] = Rule(score=lambda text: -len(text.split()), significant_gap=4)
    try:
        assert SimulationConfig(rule="shorter").rule == "shorter"
    finally:
        del RULES["shorter"]


# --- HTTP error handling against a scripted fake server ----------------------------------------

ITEM = {
    "assignment_id": 7,
    "left": {"content": "kind warm"},
    "right": {"content": "rude"},
    "scheme": {
        "allow_tie": True,
        "allow_both_bad": True,
        "strength_scale": True,
        "rationale_mode": "optional",
    },
}


class FakeApi(ThreadingHTTPServer):
    """Answers each POST from a script of ``(path suffix, status, body)``; once the script is
    done, with ``fallback``."""

    def __init__(self, script: list[tuple[str, int, Any]], fallback: tuple[int, Any]) -> None:
        self.script, self.fallback = list(script), fallback
        self.seen: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), FakeHandler)


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeApi

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null")
        with self.server.lock:
            self.server.seen.append((self.path, body))
            if self.server.script:
                suffix, status, data = self.server.script.pop(0)
                assert self.path.endswith(suffix), (self.path, suffix)
            else:
                status, data = self.server.fallback
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[Any]:
    servers: list[FakeApi] = []

    def start(script: list[tuple[str, int, Any]], fallback: tuple[int, Any]) -> FakeApi:
        server = FakeApi(script, fallback)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def url_of(server: FakeApi) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_throttling_conflicts_and_server_errors_are_retried_or_skipped(fake_api: Any) -> None:
    error = {"code": "x", "message": "y", "extra": {}}
    server = fake_api(
        [
            ("/queue/next/", 429, error),
            ("/queue/next/", 200, {"item": ITEM}),
            ("/submit/", 409, {"code": "lease_expired", "message": "gone", "extra": {}}),
            ("/queue/next/", 200, {"item": ITEM}),
            ("/submit/", 502, error),
            ("/submit/", 201, {"id": 1}),
        ],
        fallback=(200, {"item": None}),
    )
    config = SimulationConfig(annotators=1, keep_alive=True, **FAST)
    report = simulate(
        base_url=url_of(server), project_id=1, config=config, credentials=[("a", "tok")]
    )
    assert report.errors == {"409": 1, "429": 1, "502": 1}
    assert report.total == 1 and report.stopped == {"a": "queue_empty"}
    assert report.submissions[0].choice == "left"
    submitted = [body for path, body in server.seen if path.endswith("/submit/")]
    assert submitted[-1]["choice"] == "left" and submitted[-1]["strength"] == 4


def test_persistent_server_errors_stop_each_annotator_without_crashing_the_run(
    fake_api: Any,
) -> None:
    server = fake_api([], fallback=(500, {"code": "boom", "message": "down", "extra": {}}))
    config = SimulationConfig(annotators=2, max_retries=2, **FAST)
    report = simulate(
        base_url=url_of(server),
        project_id=1,
        config=config,
        credentials=[("a", "t1"), ("b", "t2")],
    )
    assert report.total == 0
    assert report.errors == {"500": 6}  # two annotators × (1 try + 2 retries)
    assert report.stopped == {"a": "error", "b": "error"}
    assert "HTTP 500 boom: down" in report.annotator_errors["a"]


def test_an_unreachable_server_is_a_recorded_connection_error(fake_api: Any) -> None:
    server = fake_api([], fallback=(200, {"item": None}))
    url = url_of(server)
    server.shutdown()
    server.server_close()
    config = SimulationConfig(annotators=1, max_retries=1, **FAST)
    report = simulate(base_url=url, project_id=1, config=config, credentials=[("a", "t")])
    assert report.errors == {"connection": 2}
    assert report.stopped == {"a": "error"}


def test_a_refused_judgment_stops_that_annotator(fake_api: Any) -> None:
    refused = {"code": "invalid_judgment", "message": "rationale: required", "extra": {}}
    server = fake_api(
        [("/queue/next/", 200, {"item": ITEM}), ("/submit/", 400, refused)],
        fallback=(204, None),
    )
    config = SimulationConfig(annotators=1, **FAST)
    report = simulate(
        base_url=url_of(server), project_id=1, config=config, credentials=[("a", "t")]
    )
    assert report.errors == {"400": 1} and report.stopped == {"a": "error"}
    assert "invalid_judgment" in report.annotator_errors["a"]
    assert server.seen[-1][0].endswith("/assignments/7/release/")


def test_time_up_while_thinking_hands_the_item_back(fake_api: Any) -> None:
    """The thinking pause would end past the deadline: the annotator hands the item back
    unjudged. The pause is longer than the whole run, so the deadline always falls inside it
    (a shorter one can end just before the deadline, and the run then stops after a submit)."""
    server = fake_api([], fallback=(200, {"item": ITEM}))  # endless work
    config = SimulationConfig(annotators=1, seconds=1.0, think_ms=60_000, **FAST)
    started = time.monotonic()
    report = simulate(
        base_url=url_of(server), project_id=1, config=config, credentials=[("a", "t")]
    )
    assert time.monotonic() - started < 30  # it did not think for the whole minute
    assert report.stopped == {"a": "seconds"}
    assert report.total == 0
    assert server.seen[-1][0].endswith("/assignments/7/release/")
    assert not any("submit" in path for path, _ in server.seen)


def test_thinking_is_part_of_the_time_a_judgment_took(fake_api: Any) -> None:
    server = fake_api([], fallback=(200, {"item": ITEM}))  # endless work, every submit taken
    config = SimulationConfig(annotators=1, max_judgments=3, think_ms=60, **FAST)
    report = simulate(
        base_url=url_of(server), project_id=1, config=config, credentials=[("a", "t")]
    )
    assert report.stopped == {"a": "max_judgments"}
    submits = [body for path, body in server.seen if "submit" in path]
    assert len(submits) == 3
    assert all(body["time_taken_ms"] >= 60 for body in submits)
