"""Simulated annotators that judge a project's queue through the real HTTP API.

Each simulated annotator is a thread with its own API token and keep-alive HTTP connection.
It loops: ``POST /api/projects/{id}/queue/next/`` → decide by a known rule (plus noise and
position bias) → ``POST …/assignments/{id}/submit/``, until the queue has nothing left for anyone
(``{"item": null}`` for every annotator at once: one that finds it empty keeps polling while
others work, since a slot they hold may come free), the judgment budget is spent or the time
is up. Judging touches no
database; only the setup (:func:`prepare_annotators`) does. Used by
``manage.py simulate_annotators``, end-to-end tests and benchmarks.

HTTP errors: 409 (lease expired / closed) and 404 → take the next item; 429 → back off
(``Retry-After``) and retry; 5xx and connection errors → retry ``max_retries`` times with
exponential backoff, then stop that annotator with the error recorded; any other 4xx stops
that annotator. One annotator's failure never stops the others.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.services import issue_token
from annotation.models import Project
from annotation.roles import Role
from annotation.services import set_membership
from preflab.errors import InvalidInputError, NotFoundError
from training.ml.synthetic import gold_score

LEFT, RIGHT, TIE, BOTH_BAD = "left", "right", "tie", "both_bad"
MAX_THROTTLED = 30  # 429s in a row before an annotator gives up
MAX_REJECTED = 20  # 404 / 409 submits in a row before an annotator gives up
NOISE_SCOPES = ("judgment", "item")
_USERNAME = re.compile(r"^[\w.@+-]{1,100}$")


# --- rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """How a simulated annotator scores one response (higher is better)."""

    score: Callable[[str], float]
    significant_gap: float = 1.0  # a score gap this large is "significantly better" (4)


def word_count(text: str) -> float:
    """The ``longer`` rule's score: the number of words."""
    return float(len(text.split()))


RULES: dict[str, Rule] = {
    "gold_words": Rule(score=gold_score, significant_gap=0.5),
    "longer": Rule(score=word_count, significant_gap=8.0),
}


def strength_for_gap(gap: float, significant_gap: float) -> int:
    """1 (negligibly) … 4 (significantly): a quarter, a half and the whole significant gap
    are the steps."""
    return 1 + sum(gap >= significant_gap * step for step in (0.25, 0.5, 1.0))


# --- configuration and report ------------------------------------------------------------------


class InvalidSimulationConfig(InvalidInputError):
    code = "invalid_simulation_config"


@dataclass(frozen=True)
class SimulationConfig:
    """How many annotators, how they judge, and when they stop. Validated on creation."""

    annotators: int = field(default=5, metadata={"help": "Simulated annotators (threads)."})
    noise: float = field(
        default=0.0,
        metadata={
            "help": "Probability that an answer is flipped (left↔right; a tie or "
            "'both bad' becomes a random side)."
        },
    )
    position_bias: float = field(
        default=0.0, metadata={"help": "Probability of answering 'left' whatever is shown."}
    )
    rule: str = field(default="gold_words", metadata={"help": "A key of RULES."})
    max_judgments: int | None = field(
        default=None, metadata={"help": "Stop after this many judgments in total."}
    )
    seconds: float | None = field(default=None, metadata={"help": "Stop after this long."})
    think_ms: int = field(default=0, metadata={"help": "Pause before each submit."})
    seed: int = field(default=0, metadata={"help": "Seeds each annotator's decisions."})
    noise_scope: str = field(
        default="judgment",
        metadata={
            "help": "'judgment': every judgment draws its own noise (independent annotators); "
            "'item': the draws are keyed by the pair's two texts, so every annotator answers "
            "a pair alike (hard items that fool everyone) and the labels do not depend on "
            "which annotator happened to get which pair (reproducible runs)."
        },
    )
    prefix: str = field(default="sim", metadata={"help": "Usernames are PREFIX-1 … PREFIX-M."})
    both_bad_below: float | None = field(
        default=None,
        metadata={"help": "Answer 'both bad' (where allowed) when both scores are below this."},
    )
    max_retries: int = field(
        default=3, metadata={"help": "Retries of a 5xx or connection error before giving up."}
    )
    retry_backoff_s: float = field(
        default=0.1, metadata={"help": "First backoff; it doubles per retry (capped at 5 s)."}
    )
    http_timeout_s: float = field(default=30.0, metadata={"help": "Per-request timeout."})
    keep_alive: bool = field(
        default=False,
        metadata={
            "help": "Reuse one connection per annotator. Off by default: Django's "
            "development / live server stalls ~40 ms on each response over a reused "
            "connection (Nagle's algorithm meets delayed ACKs)."
        },
    )

    def __post_init__(self) -> None:
        problems = []
        if self.annotators < 1:
            problems.append("annotators must be at least 1")
        for name in ("noise", "position_bias"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be between 0 and 1, not {getattr(self, name)}")
        if self.noise_scope not in NOISE_SCOPES:
            problems.append(f"noise_scope must be one of {', '.join(NOISE_SCOPES)}")
        if self.rule not in RULES:
            problems.append(f"unknown rule {self.rule!r}; known rules: {', '.join(RULES)}")
        if self.max_judgments is not None and self.max_judgments < 1:
            problems.append("max_judgments must be at least 1")
        if self.seconds is not None and self.seconds <= 0:
            problems.append("seconds must be positive")
        if self.think_ms < 0 or self.max_retries < 0 or self.retry_backoff_s < 0:
            problems.append("think_ms, max_retries and retry_backoff_s must not be negative")
        if self.http_timeout_s <= 0:
            problems.append("http_timeout_s must be positive")
        if not _USERNAME.match(self.prefix):
            problems.append(f"prefix {self.prefix!r} is not a valid username start")
        if problems:
            raise InvalidSimulationConfig("; ".join(problems), extra={"problems": problems})


@dataclass(frozen=True)
class Submission:
    """One accepted judgment, in display terms."""

    annotator: str
    assignment_id: int
    choice: str
    rule_choice: str  # what a noiseless, unbiased annotator would have answered
    strength: int | None


@dataclass
class SimulationReport:
    """What the run did. ``as_dict`` is the JSON the command prints (without submissions)."""

    per_annotator: dict[str, int]
    total: int
    errors: dict[str, int]  # HTTP status (or "connection", "bad_response") → count
    stopped: dict[str, str]  # annotator → queue_empty / max_judgments / seconds / error
    annotator_errors: dict[str, str]  # annotator → the error that stopped it
    elapsed_s: float
    judgments_per_s: float
    agreement: float | None  # share of submitted choices equal to the noiseless rule's
    left_share: float | None
    choices: dict[str, int]
    submissions: list[Submission] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["submissions"]
        return data


# --- deciding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelScheme:
    """The label scheme a queue item carries."""

    allow_tie: bool = True
    allow_both_bad: bool = True
    strength_scale: bool = True
    rationale_mode: str = "optional"


_SCHEME_KEYS = {"allow_tie", "allow_both_bad", "strength_scale", "rationale_mode"}


@dataclass(frozen=True)
class Decision:
    choice: str
    strength: int | None
    rule_choice: str


def decide(
    *,
    left: str,
    right: str,
    scheme: LabelScheme,
    rule: Rule,
    config: SimulationConfig,
    rng: random.Random,
) -> Decision:
    """Judge one displayed pair: the rule's answer, then position bias, then noise.

    Equal scores are a tie where ties are allowed, else a random side (with ``noise_scope``
    ``item``: the side whose text sorts first, whichever way the pair is shown). An answer
    that differs from the rule's carries a random strength; the rule's own answer the
    strength of its score gap.
    """
    score_left, score_right = rule.score(left), rule.score(right)
    if (
        config.both_bad_below is not None
        and scheme.allow_both_bad
        and max(score_left, score_right) < config.both_bad_below
    ):
        rule_choice = BOTH_BAD
    elif score_left != score_right:
        rule_choice = LEFT if score_left > score_right else RIGHT
    elif scheme.allow_tie:
        rule_choice = TIE
    elif config.noise_scope == "item":
        rule_choice = LEFT if left <= right else RIGHT
    else:
        rule_choice = rng.choice((LEFT, RIGHT))
    choice = rule_choice
    if rng.random() < config.position_bias:
        choice = LEFT
    elif rng.random() < config.noise:
        choice = {LEFT: RIGHT, RIGHT: LEFT}.get(rule_choice) or rng.choice((LEFT, RIGHT))
        if config.noise_scope == "item" and rule_choice not in (LEFT, RIGHT):
            choice = RIGHT if left <= right else LEFT  # a side that does not follow the display
    strength: int | None = None
    if scheme.strength_scale and choice in (LEFT, RIGHT):
        if choice == rule_choice:
            gap = abs(score_left - score_right)
            strength = strength_for_gap(gap, rule.significant_gap)
        else:
            strength = rng.randint(1, 4)
    return Decision(choice, strength, rule_choice)


def item_rng(seed: int, left: str, right: str) -> random.Random:
    """A generator keyed by the seed and the pair's two texts, whichever way it is shown."""
    first, second = sorted((left, right))
    key = hashlib.sha256(f"{seed}\0{first}\0{second}".encode()).hexdigest()
    return random.Random(key)  # noqa: S311 - simulation


# --- setup (the only part that touches the database) -------------------------------------------


@transaction.atomic
def prepare_annotators(*, project: Project, count: int, prefix: str) -> list[tuple[str, str]]:
    """Users ``{prefix}-1 … {prefix}-{count}`` (created with an unusable password if missing),
    annotators of ``project``, with their API tokens: ``[(username, token), …]``."""
    users = get_user_model()
    credentials = []
    for i in range(1, count + 1):
        username = f"{prefix}-{i}"
        user = users.objects.filter(username=username).first()
        if user is None:
            user = users.objects.create_user(username=username, password=None)
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
        credentials.append((username, issue_token(user=user, name="simulation").key))
    return credentials


# --- HTTP --------------------------------------------------------------------------------------


class TransportError(Exception):
    """No HTTP answer: the connection failed, was reset or timed out."""


@dataclass(frozen=True)
class Reply:
    status: int
    data: Any
    retry_after: float | None

    def message(self) -> str:
        if isinstance(self.data, dict) and "code" in self.data:
            return f"{self.data['code']}: {self.data.get('message', '')}"
        return str(self.data)[:200]


def parse_base_url(base_url: str) -> SplitResult:
    """The server's URL, checked: ``http(s)://host[:port][/prefix]``."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSimulationConfig(f"Not an http(s) URL: {base_url!r}.")
    return parts


class ApiClient:
    """JSON POSTs with ``Authorization: Token …``; over one reused connection with
    ``keep_alive``, else a connection per request."""

    def __init__(self, base_url: str, token: str, timeout: float, keep_alive: bool) -> None:
        parts = parse_base_url(base_url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._headers = {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if not keep_alive:
            self._headers["Connection"] = "close"

    def post(self, path: str, body: dict[str, Any]) -> Reply:
        payload = json.dumps(body).encode()
        for attempt in range(2):
            reused = self._conn is not None
            conn = self._conn or self._connect()
            try:
                conn.request("POST", self._prefix + path, body=payload, headers=self._headers)
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection: reconnect
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
            if response.will_close:
                self.close()
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = raw[:200].decode(errors="replace")
            retry_after = response.getheader("Retry-After")
            return Reply(
                response.status,
                data,
                float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- the annotators ----------------------------------------------------------------------------


class _Budget:
    """The run's judgment budget, shared by the annotators (None: unlimited)."""

    def __init__(self, limit: int | None) -> None:
        self._left = limit
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left is None:
                return True
            if self._left <= 0:
                return False
            self._left -= 1
            return True

    def give_back(self) -> None:
        with self._lock:
            if self._left is not None:
                self._left += 1


class _Crew:
    """Who is still at work. An annotator whose queue looks empty waits while others work:
    a slot another annotator holds (or is locking at that instant) may come free again.
    The run ends when every annotator finds the queue empty at once."""

    POLL_S = 0.1

    def __init__(self, size: int) -> None:
        self._busy = size
        self._lock = threading.Lock()

    def idle(self) -> None:
        with self._lock:
            self._busy -= 1

    def resume(self) -> None:
        with self._lock:
            self._busy += 1

    def all_idle(self) -> bool:
        with self._lock:
            return self._busy <= 0


class _Stop(Exception):
    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class _Outcome:
    username: str
    submissions: list[Submission] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    stopped: str = ""
    error: str = ""


class _Annotator:
    """One simulated annotator's loop over the queue."""

    def __init__(
        self,
        *,
        username: str,
        token: str,
        index: int,
        base_url: str,
        project_id: int,
        config: SimulationConfig,
        budget: _Budget,
        deadline: float | None,
        crew: _Crew,
    ) -> None:
        self.outcome = _Outcome(username)
        self._crew = crew
        self._idle = False
        self._client = ApiClient(base_url, token, config.http_timeout_s, config.keep_alive)
        self._api = f"/api/projects/{project_id}"
        self._config = config
        self._rule = RULES[config.rule]
        self._rng = random.Random(f"{config.seed}:{index}")  # noqa: S311 - simulation
        self._budget = budget
        self._deadline = deadline
        self._rejected = 0

    def run(self) -> _Outcome:
        try:
            self.outcome.stopped = self._loop()
        except _Stop as stop:
            self.outcome.stopped, self.outcome.error = stop.reason, stop.message
        except Exception as exc:  # never let one annotator crash the run
            self.outcome.stopped = "error"
            self.outcome.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._set_idle(True)  # stopped, whatever the reason
            self._client.close()
        return self.outcome

    def _set_idle(self, idle: bool) -> None:
        if idle != self._idle:
            self._idle = idle
            (self._crew.idle if idle else self._crew.resume)()

    def _loop(self) -> str:
        """Judge until the queue is empty for the whole crew, the budget is spent or the
        time is up; the crew is told when this annotator stops working."""
        while True:
            if self._deadline is not None and time.monotonic() >= self._deadline:
                return "seconds"
            if not self._budget.take():
                return "max_judgments"
            judged = False
            try:
                item = self._next() or self._wait_for_work()
                if item is None:
                    late = self._deadline is not None and time.monotonic() >= self._deadline
                    return "seconds" if late else "queue_empty"
                judged = self._judge(item)
            finally:
                if not judged:
                    self._budget.give_back()

    def _wait_for_work(self) -> dict[str, Any] | None:
        """The queue looked empty: poll while others still work; None once all are idle
        (this annotator then counts as stopped) or the time is up."""
        self._set_idle(True)
        while not self._crew.all_idle():
            if self._deadline is not None and time.monotonic() >= self._deadline:
                return None
            time.sleep(_Crew.POLL_S)
            item = self._next()
            if item is not None:
                self._set_idle(False)
                return item
        return None

    def _next(self) -> dict[str, Any] | None:
        reply = self._call(f"{self._api}/queue/next/", {})
        if reply.status == 200 and isinstance(reply.data, dict) and "item" in reply.data:
            item = reply.data["item"]
            return item if isinstance(item, dict) else None
        key = str(reply.status) if reply.status != 200 else "bad_response"
        self.outcome.errors[key] += 1
        raise _Stop("error", f"queue/next: HTTP {reply.status} {reply.message()}")

    def _judge(self, item: dict[str, Any]) -> bool:
        """Decide and submit one leased item; False when the server refused it (409/404)."""
        received = time.monotonic()
        assignment_id = int(item["assignment_id"])
        scheme_fields = {k: v for k, v in item.get("scheme", {}).items() if k in _SCHEME_KEYS}
        scheme = LabelScheme(**scheme_fields)
        decision = decide(
            left=item["left"]["content"],
            right=item["right"]["content"],
            scheme=scheme,
            rule=self._rule,
            config=self._config,
            rng=self._rng
            if self._config.noise_scope == "judgment"
            else item_rng(self._config.seed, item["left"]["content"], item["right"]["content"]),
        )
        if self._config.think_ms:
            self._think(self._config.think_ms / 1000, assignment_id)
        body: dict[str, Any] = {
            "choice": decision.choice,
            "time_taken_ms": int((time.monotonic() - received) * 1000),
        }
        if decision.strength is not None:
            body["strength"] = decision.strength
        if scheme.rationale_mode == "required":
            body["rationale"] = f"Simulated annotator (rule {self._config.rule})."
        path = f"{self._api}/assignments/{assignment_id}/submit/"
        reply = self._call(path, body)
        if reply.status in (200, 201):
            self._rejected = 0
            self.outcome.submissions.append(
                Submission(
                    self.outcome.username,
                    assignment_id,
                    decision.choice,
                    decision.rule_choice,
                    decision.strength,
                )
            )
            return True
        self.outcome.errors[str(reply.status)] += 1
        if reply.status in (404, 409):  # lease expired, closed or gone: take the next item
            self._rejected += 1
            if self._rejected > MAX_REJECTED:
                raise _Stop("error", f"{self._rejected} submits refused in a row")
            return False
        self._release(assignment_id)  # our answer does not fit the project: stop here
        raise _Stop("error", f"submit: HTTP {reply.status} {reply.message()}")

    def _call(self, path: str, body: dict[str, Any]) -> Reply:
        """POST, retrying 429 (after its Retry-After), 5xx and connection errors."""
        failures = throttled = 0
        while True:
            try:
                reply = self._client.post(path, body)
            except TransportError as exc:
                self.outcome.errors["connection"] += 1
                failures += 1
                if failures > self._config.max_retries:
                    raise _Stop("error", f"POST {path}: {exc}") from None
                self._sleep(self._backoff(failures))
                continue
            if reply.status == 429:
                self.outcome.errors["429"] += 1
                throttled += 1
                if throttled > MAX_THROTTLED:
                    raise _Stop("error", f"POST {path}: throttled {throttled} times in a row")
                wait = reply.retry_after
                self._sleep(self._backoff(throttled) if wait is None else wait)
                continue
            if reply.status >= 500:
                self.outcome.errors[str(reply.status)] += 1
                failures += 1
                if failures > self._config.max_retries:
                    raise _Stop("error", f"POST {path}: HTTP {reply.status} {reply.message()}")
                self._sleep(self._backoff(failures))
                continue
            return reply

    def _backoff(self, attempt: int) -> float:
        return float(min(5.0, self._config.retry_backoff_s * 2 ** (attempt - 1)))

    def _sleep(self, seconds: float) -> None:
        if self._deadline is not None and time.monotonic() + seconds >= self._deadline:
            time.sleep(max(0.0, self._deadline - time.monotonic()))
            raise _Stop("seconds")
        time.sleep(seconds)

    def _think(self, seconds: float, assignment_id: int) -> None:
        try:
            self._sleep(seconds)
        except _Stop:
            self._release(assignment_id)  # time is up: hand the item back unjudged
            raise

    def _release(self, assignment_id: int) -> None:
        try:
            self._client.post(f"{self._api}/assignments/{assignment_id}/release/", {})
        except TransportError:
            pass  # best effort: the lease expires anyway


# --- the run -----------------------------------------------------------------------------------


def simulate(
    *,
    base_url: str,
    project_id: int,
    config: SimulationConfig,
    credentials: Sequence[tuple[str, str]] | None = None,
) -> SimulationReport:
    """Run ``config.annotators`` simulated annotators against the server at ``base_url``
    until each stops; returns the report.

    ``credentials`` (``[(username, token), …]``) default to :func:`prepare_annotators` on
    this process's database (which must then be the server's).
    """
    parse_base_url(base_url)
    if credentials is None:
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise NotFoundError(f"No project with id {project_id}.")
        credentials = prepare_annotators(
            project=project, count=config.annotators, prefix=config.prefix
        )
    budget = _Budget(config.max_judgments)
    crew = _Crew(len(credentials))
    started = time.monotonic()
    deadline = None if config.seconds is None else started + config.seconds
    annotators = [
        _Annotator(
            username=username,
            token=token,
            index=i,
            base_url=base_url,
            project_id=project_id,
            config=config,
            budget=budget,
            deadline=deadline,
            crew=crew,
        )
        for i, (username, token) in enumerate(credentials, start=1)
    ]
    with ThreadPoolExecutor(max_workers=max(1, len(annotators))) as pool:
        outcomes = list(pool.map(_Annotator.run, annotators))
    return _report(outcomes, time.monotonic() - started)


def _report(outcomes: list[_Outcome], elapsed: float) -> SimulationReport:
    submissions = [s for o in outcomes for s in o.submissions]
    errors: Counter[str] = Counter()
    for outcome in outcomes:
        errors.update(outcome.errors)
    total = len(submissions)
    choices = Counter(s.choice for s in submissions)
    agreeing = sum(s.choice == s.rule_choice for s in submissions)
    return SimulationReport(
        per_annotator={o.username: len(o.submissions) for o in outcomes},
        total=total,
        errors=dict(sorted(errors.items())),
        stopped={o.username: o.stopped for o in outcomes},
        annotator_errors={o.username: o.error for o in outcomes if o.error},
        elapsed_s=round(elapsed, 3),
        judgments_per_s=round(total / elapsed, 2) if elapsed > 0 else 0.0,
        agreement=round(agreeing / total, 4) if total else None,
        left_share=round(choices[LEFT] / total, 4) if total else None,
        choices=dict(sorted(choices.items())),
        submissions=submissions,
    )
