"""Candidate generation: pair selection (pure), sampling from a tiny policy, and the service
that publishes a batch of comparisons (every pairing, validation, atomicity, the queue)."""

from __future__ import annotations

import itertools
import json
import shutil
import statistics
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
import torch

from annotation import queue
from annotation.models import (
    Batch,
    BatchSource,
    Comparison,
    Project,
    Prompt,
    Response,
    ResponseSource,
)
from annotation.roles import Role
from annotation.services import create_project, set_membership
from preflab.errors import ConflictError, InvalidInputError
from tests.training.test_reward import WORDS
from training import generation, generation_publish
from training.generation import (
    ArtifactOfAnotherProject,
    ComparePolicyRequired,
    InvalidGeneration,
    InvalidSamplingConfig,
    NoPrompts,
    NothingToCompare,
    Pairing,
    PromptOfAnotherProject,
    PromptsChanged,
    RewardModelRequired,
    WrongArtifactKind,
    check_generation_request,
    generate_batch,
    select_pairs,
)
from training.ml.config import ConfigError
from training.ml.generation import (
    Candidate,
    CandidateScore,
    SamplingConfig,
    generate_candidates,
    pair_uncertainty,
    parse_sampling_config,
    preference_probability,
    resolve_backend,
    vllm_available,
)
from training.ml.scoring import ENSEMBLE_MANIFEST
from training.ml.tiny import build_causal_lm, build_tokenizer
from training.models import ArtifactKind, ModelArtifact, TrainingRun
from training.registry import register_artifact, staging_dir

ANSWER = "cat thanks"
QUESTIONS = ["the cat?", "a dog river?", "green stone light?"]


# --- select_pairs: pure ----------------------------------------------------------------------


def test_best_vs_worst_pairs_the_highest_with_the_lowest_score() -> None:
    scores = [0.1, 2.0, -1.0, 0.5]
    assert select_pairs(Pairing.BEST_VS_WORST, scores) == [(1, 2)]
    assert select_pairs("best_vs_worst", scores, pairs_per_prompt=5) == [(1, 2), (3, 0)]
    # all equal: still two different candidates
    assert select_pairs(Pairing.BEST_VS_WORST, [1.0, 1.0, 1.0]) == [(0, 2)]


def test_uncertain_picks_the_pairs_with_the_closest_scores() -> None:
    scores = [0.0, 3.0, 0.2, -2.0]
    # |Δ|: (0,2) 0.2, (0,3) 2.0, (1,2) 2.8, (0,1) 3.0 … — each as (higher, lower)
    assert select_pairs(Pairing.UNCERTAIN, scores) == [(2, 0)]
    assert select_pairs(Pairing.UNCERTAIN, scores, pairs_per_prompt=2) == [(2, 0), (0, 3)]


def test_uncertain_counts_ensemble_disagreement() -> None:
    scores = [0.0, 1.0, -1.0]  # (1,0) and (0,2) are equally far apart
    assert select_pairs(Pairing.UNCERTAIN, scores)[0] == (1, 0)
    # the members disagree about candidate 2 against 0: that pair is the less certain one
    members = [(0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (2.6, -2.8, -2.8)]
    assert select_pairs(Pairing.UNCERTAIN, scores, members=members)[0] == (0, 2)


def test_uncertainty_is_the_spread_of_member_differences_not_of_each_candidate() -> None:
    # Four members with a strong shared length bias b_k (their errors are correlated):
    # candidates 0 and 1 are long, so every member shifts both by the same b_k.
    bias = (-9.0, -3.0, 3.0, 9.0)
    long_good = tuple(1.0 + b for b in bias)  # mean 1.0
    long_worse = tuple(0.2 + b for b in bias)  # mean 0.2: every member says 0 ≻ 1 by 0.8
    short_a = (1.4, -0.2, 1.4, -0.2)  # mean 0.6
    short_b = (-0.2, 1.0, -0.2, 1.0)  # mean 0.4: members split 2–2 on the order of 2 and 3
    members = [long_good, long_worse, short_a, short_b]
    scores = [sum(m) / 4 for m in members]

    candidates = [CandidateScore(s, 0.0, m) for s, m in zip(scores, members, strict=True)]
    certain = pair_uncertainty(candidates[0], candidates[1])
    split = pair_uncertainty(candidates[2], candidates[3])
    assert certain.std == pytest.approx(0.0, abs=1e-9) and certain.disagreement == 0.0
    assert split.std == pytest.approx(1.4) and split.disagreement == 0.5
    assert abs(split.probability - 0.5) < abs(certain.probability - 0.5)
    ranked = select_pairs(Pairing.UNCERTAIN, scores, pairs_per_prompt=6, members=members)
    assert ranked.index((2, 3)) < ranked.index((0, 1)) == 5  # the agreed pair comes last

    # The old per-candidate formula, √(s_a² + s_b²), counts the shared bias twice and would
    # have asked for the pair every member agrees on.
    stds = [statistics.pstdev(m) for m in members]

    def old_distance(i: int, j: int) -> float:
        pair_std = (stds[i] ** 2 + stds[j] ** 2) ** 0.5
        return abs(preference_probability(scores[i], scores[j], pair_std) - 0.5)

    assert old_distance(0, 1) < old_distance(2, 3)
    assert preference_probability(1.0, 0.0) > preference_probability(1.0, 0.0, 3.0) > 0.5
    assert preference_probability(0.0, 1.0) == pytest.approx(1 - preference_probability(1.0, 0.0))


def test_random_pairs_are_distinct_and_seeded() -> None:
    pairs = select_pairs(Pairing.RANDOM, [None] * 5, pairs_per_prompt=4, seed=7, key="p1")
    assert len(pairs) == len(set(pairs)) == 4
    assert all(0 <= i < j < 5 for i, j in pairs)
    assert pairs == select_pairs(Pairing.RANDOM, [None] * 5, pairs_per_prompt=4, seed=7, key="p1")
    others = [
        select_pairs(Pairing.RANDOM, [None] * 5, pairs_per_prompt=4, seed=8, key=f"p{k}")
        for k in range(5)
    ]
    assert any(o != pairs for o in others)
    every = select_pairs(Pairing.RANDOM, [None] * 5, pairs_per_prompt=100)
    assert sorted(every) == list(itertools.combinations(range(5), 2))


def test_new_vs_previous_pairs_one_candidate_of_each_policy() -> None:
    sides = ["new", "previous", "new", "both", "previous", "new"]
    scores = [None] * len(sides)
    assert select_pairs(Pairing.NEW_VS_PREVIOUS, scores, sides=sides, pairs_per_prompt=9) == [
        (0, 1),
        (2, 4),
    ]
    assert select_pairs(Pairing.NEW_VS_PREVIOUS, scores, sides=sides) == [(0, 1)]
    assert select_pairs(Pairing.NEW_VS_PREVIOUS, [None, None], sides=["new", "new"]) == []


def test_reward_strategies_need_scores_and_two_candidates() -> None:
    with pytest.raises(ValueError, match="reward score"):
        select_pairs(Pairing.UNCERTAIN, [1.0, None])
    assert select_pairs(Pairing.BEST_VS_WORST, [1.0]) == []


def test_sampling_config_validation() -> None:
    assert parse_sampling_config({}) == SamplingConfig()
    assert parse_sampling_config({"n": 4, "temperature": 1}).temperature == 1.0
    with pytest.raises(ConfigError) as caught:
        parse_sampling_config({"n": 0, "temperature": 0, "top_p": 1.5, "backend": "tpu", "x": 1})
    assert set(caught.value.fields) == {"n", "temperature", "top_p", "backend", "x"}
    assert resolve_backend("transformers") == "transformers"
    assert resolve_backend("auto", "cpu") == "transformers"
    if not vllm_available():
        assert resolve_backend("auto") == "transformers"
        with pytest.raises(ConfigError, match="vllm"):
            resolve_backend("vllm")


# --- tiny models, built once for the module ----------------------------------------------------


def _train_fixed_answer(folder: Path, steps: int = 100) -> None:
    """Teach a tiny policy to answer every question with ANSWER and stop."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": q}, {"role": "assistant", "content": ANSWER}],
            tokenize=False,
        )
        for q in QUESTIONS
    ]
    heads = [
        len(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": q}],
                tokenize=True,
                add_generation_prompt=True,
                return_dict=True,
            )["input_ids"]
        )
        for q in QUESTIONS
    ]
    tokenizer.padding_side = "right"
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    for row, head in enumerate(heads):
        labels[row, :head] = -100  # learn the answer, not the questions
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(folder)


def _reward_model(policy: Path, out: Path, seed: int) -> Path:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)  # the score head is initialised here
    model = AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(policy).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("generation-models")
    corpus = [" ".join(WORDS), ANSWER, *QUESTIONS] * 10
    tokenizer = build_tokenizer(corpus, root / "tokenizer", vocab_size=200)
    shape = {"hidden": 32, "layers": 1, "heads": 2}
    paths = {
        "policy": build_causal_lm(tokenizer, root / "policy", seed=0, **shape),
        "previous": build_causal_lm(tokenizer, root / "previous", seed=1, **shape),
        "fixed": build_causal_lm(tokenizer, root / "fixed", seed=2, **shape),
    }
    _train_fixed_answer(paths["fixed"])
    paths["reward"] = _reward_model(paths["policy"], root / "reward", seed=3)
    ensemble = root / "ensemble"
    for i in range(2):
        _reward_model(paths["policy"], ensemble / f"member-{i}", seed=10 + i)
    (ensemble / ENSEMBLE_MANIFEST).write_text(json.dumps({"members": ["member-0", "member-1"]}))
    paths["ensemble"] = ensemble
    return paths


# --- generate_candidates ------------------------------------------------------------------------


def test_generate_candidates_gives_n_per_prompt_and_is_seeded(models: dict[str, Path]) -> None:
    prompts: list[Any] = [[{"role": "user", "content": q}] for q in QUESTIONS] + ["a river"]
    config = SamplingConfig(n=3, max_new_tokens=8, batch_size=3, seed=5, temperature=1.0)
    rng_before = torch.get_rng_state()
    first = generate_candidates(models["policy"], prompts, config)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is left alone
    assert [len(group) for group in first] == [3, 3, 3, 3]
    again = generate_candidates(models["policy"], prompts, config)
    assert [[c.text for c in g] for g in again] == [[c.text for c in g] for g in first]
    other = generate_candidates(models["policy"], prompts, replace(config, seed=6))
    assert [[c.text for c in g] for g in other] != [[c.text for c in g] for g in first]
    flat = [c for group in first for c in group]
    assert len({c.text for c in flat}) > 1
    assert all(c.num_tokens <= 8 for c in flat)
    assert all(c.num_tokens == 8 for c in flat if not c.finished)
    assert all(c.text == c.text.strip() for c in flat)


def test_finished_flags_follow_the_stop_token(models: dict[str, Path]) -> None:
    prompts: list[Any] = [[{"role": "user", "content": q}] for q in QUESTIONS]
    done = generate_candidates(models["fixed"], prompts, SamplingConfig(n=2, max_new_tokens=40))
    flat = [c for group in done for c in group]
    assert all(c.finished and c.text == ANSWER and c.num_tokens < 40 for c in flat), flat
    cut = generate_candidates(models["fixed"], prompts, SamplingConfig(n=2, max_new_tokens=3))
    flat = [c for group in cut for c in group]
    assert all(not c.finished and c.num_tokens == 3 for c in flat)
    assert all(ANSWER.startswith(c.text) and len(c.text) < len(ANSWER) for c in flat)


# --- the service ----------------------------------------------------------------------------------


@pytest.fixture
def _artifact_root(settings: Any, tmp_path: Path) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"


@pytest.fixture
def register(_artifact_root: None, models: dict[str, Path]) -> Callable[..., ModelArtifact]:
    def make(name: str, kind: str = ArtifactKind.POLICY, project: Any = None) -> ModelArtifact:
        source = staging_dir(name)
        shutil.copytree(models[name], source, dirs_exist_ok=True)
        return register_artifact(source=source, name=name, kind=kind, project=project)

    return make


@pytest.fixture
def setup(db: None) -> tuple[Project, list[Prompt]]:
    project = create_project(name="generation", overlap_k=2)
    prompts = [
        Prompt.objects.create(
            project=project, external_id=f"q{i}", messages=[{"role": "user", "content": q}]
        )
        for i, q in enumerate(QUESTIONS)
    ]
    return project, prompts


def _row_counts() -> tuple[int, int, int]:
    return Batch.objects.count(), Response.objects.count(), Comparison.objects.count()


def _check_batch(project: Project, batch_id: int) -> list[Comparison]:
    batch = Batch.objects.get(pk=batch_id)
    assert batch.source == BatchSource.GENERATION
    comparisons = list(Comparison.objects.filter(batch=batch).select_related())
    assert batch.comparison_count == len(comparisons) > 0
    for c in comparisons:
        assert c.response_a_id < c.response_b_id
        assert c.project_id == project.id
        assert c.response_a.prompt_id == c.response_b.prompt_id == c.prompt_id
        assert c.response_a.content != c.response_b.content
        assert c.target_votes == project.overlap_k and not c.is_gold
    return comparisons


SAMPLING = SamplingConfig(n=4, max_new_tokens=8, temperature=1.0, seed=1)


@pytest.mark.django_db
@pytest.mark.parametrize("pairing", [Pairing.RANDOM, Pairing.BEST_VS_WORST, Pairing.UNCERTAIN])
def test_each_pairing_publishes_a_batch_of_generated_responses(
    setup: tuple[Project, list[Prompt]], register: Callable[..., ModelArtifact], pairing: Pairing
) -> None:
    project, prompts = setup
    policy, reward = register("policy"), register("reward", ArtifactKind.REWARD)
    report = generate_batch(
        project=project,
        policy=policy,
        prompts=prompts,
        sampling=SAMPLING,
        pairing=pairing,
        pairs_per_prompt=2,
        reward=reward,
        round_number=3,
    )
    comparisons = _check_batch(project, report.batch_id)
    assert report.comparisons_created == len(comparisons) == 2 * len(prompts)
    assert report.candidates == 4 * len(prompts)
    responses = list(Response.objects.all())
    assert (
        report.responses_created
        == len(responses)
        == 4 * len(prompts) - report.duplicates_skipped - report.empty_skipped
    )
    for r in responses:
        assert r.source == ResponseSource.GENERATED
        assert (r.model_artifact_id, r.round_number) == (policy.id, 3)
        assert r.metadata["sampling"] == asdict(SAMPLING)
        assert isinstance(r.metadata["finished"], bool)
        assert r.metadata["reward_artifact_id"] == reward.id
        assert isinstance(r.metadata["reward"], float) and r.metadata["reward_std"] == 0.0
    batch = Batch.objects.get(pk=report.batch_id)
    assert batch.metadata["pairing"] == pairing.value
    assert batch.metadata["policy_artifact_id"] == policy.id
    rewards = report.stats["reward"]
    assert rewards["mean_chosen"] >= rewards["mean_rejected"]

    for prompt in prompts:
        mine = {r.id: r.metadata["reward"] for r in responses if r.prompt_id == prompt.id}
        pairs = {
            (c.response_a_id, c.response_b_id) for c in comparisons if c.prompt_id == prompt.id
        }
        assert len(pairs) == 2
        if pairing is Pairing.BEST_VS_WORST:
            ranked = sorted(mine, key=lambda rid: mine[rid])
            extremes = (min(ranked[0], ranked[-1]), max(ranked[0], ranked[-1]))
            middle = (min(ranked[1], ranked[-2]), max(ranked[1], ranked[-2]))
            assert pairs == {extremes, middle}  # best vs worst, 2nd best vs 2nd worst
        if pairing is Pairing.UNCERTAIN:
            gaps = sorted(
                (abs(mine[a] - mine[b]), (a, b)) for a, b in itertools.combinations(sorted(mine), 2)
            )
            assert pairs == {gaps[0][1], gaps[1][1]}


@pytest.mark.django_db
def test_new_vs_previous_pairs_each_policy_once_and_an_annotator_can_lease_it(
    setup: tuple[Project, list[Prompt]],
    register: Callable[..., ModelArtifact],
    make_user: Any,
) -> None:
    project, prompts = setup
    new, previous = register("policy"), register("previous")
    ensemble = register("ensemble", ArtifactKind.REWARD)
    report = generate_batch(
        project=project,
        policy=new,
        compare_policy=previous,
        prompts=prompts,
        sampling=replace(SAMPLING, n=2),
        pairing=Pairing.NEW_VS_PREVIOUS,
        pairs_per_prompt=2,
        reward=ensemble,
        round_number=1,
        batch_name="round 1",
    )
    comparisons = _check_batch(project, report.batch_id)
    responses = list(Response.objects.all())
    expected = sum(  # k-th new against k-th previous distinct candidate, 2 per prompt at most
        min(
            2,
            sum(1 for r in responses if r.prompt_id == p.id and r.metadata["side"] == "new"),
            sum(1 for r in responses if r.prompt_id == p.id and r.metadata["side"] == "previous"),
        )
        for p in prompts
    )
    assert len(comparisons) == report.comparisons_created == expected >= len(prompts)
    batch = Batch.objects.get(pk=report.batch_id)
    assert batch.name == "round 1"
    assert batch.metadata["compare_seed"] != SAMPLING.seed  # independent draws
    sides = batch.metadata["response_sides"]
    for c in comparisons:
        makers = {c.response_a.model_artifact_id, c.response_b.model_artifact_id}
        assert makers == {new.id, previous.id}
        tags = {c.response_a.metadata["side"], c.response_b.metadata["side"]}
        assert tags == {"new", "previous"}
        assert {c.response_a_id, c.response_b_id} & set(sides["new"])
        assert {c.response_a_id, c.response_b_id} & set(sides["previous"])
    assert all(r.metadata["reward_std"] > 0 for r in responses)  # an ensemble
    assert 0.0 <= report.stats["reward"]["predicted_win_rate_new"] <= 1.0
    assert report.stats["sides"]["previous"]["artifact_id"] == previous.id

    annotator = make_user("annotator")
    set_membership(project=project, user=annotator, role=Role.ANNOTATOR)
    lease = queue.lease_next(project_id=project.id, user=annotator)
    assert lease is not None
    leased = next(c for c in comparisons if c.id == lease.comparison_id)
    assert (lease.content_a, lease.content_b) == (
        leased.response_a.content,
        leased.response_b.content,
    )
    assert lease.messages == leased.prompt.messages


@pytest.mark.django_db
def test_identical_candidates_collapse_into_one_response(
    setup: tuple[Project, list[Prompt]], register: Callable[..., ModelArtifact]
) -> None:
    project, prompts = setup
    fixed, previous = register("fixed"), register("previous")
    sampling = SamplingConfig(n=3, max_new_tokens=40, seed=1)
    before = _row_counts()
    with pytest.raises(NothingToCompare):  # one distinct answer per prompt: nothing to pair
        generate_batch(
            project=project, policy=fixed, prompts=prompts, sampling=sampling, pairing="random"
        )
    assert _row_counts() == before

    report = generate_batch(
        project=project,
        policy=fixed,
        compare_policy=previous,
        prompts=prompts,
        sampling=sampling,
        pairing=Pairing.NEW_VS_PREVIOUS,
        pairs_per_prompt=3,
    )
    answers = Response.objects.filter(model_artifact_id=fixed.id)
    assert [(r.content, r.metadata["copies"]) for r in answers] == [(ANSWER, 3)] * len(prompts)
    assert report.duplicates_skipped >= 2 * len(prompts)
    assert report.comparisons_created == len(prompts)  # one distinct new answer per prompt


def _fake_generator(texts: list[str]) -> Callable[..., list[list[Candidate]]]:
    def fake(
        policy_dir: Path, prompts: list[Any], config: SamplingConfig, **_: Any
    ) -> list[list[Candidate]]:
        return [[Candidate(t, True, 2) for t in texts[: config.n]] for _ in prompts]

    return fake


@pytest.mark.django_db
def test_existing_responses_are_reused_and_empty_ones_skipped(
    setup: tuple[Project, list[Prompt]],
    register: Callable[..., ModelArtifact],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project, prompts = setup
    imported = Response.objects.create(
        prompt=prompts[0], content="two", content_hash=generation.content_hash("two")
    )
    monkeypatch.setattr(
        generation, "generate_candidates", _fake_generator(["one", " two ", "", "t\x00hree"])
    )
    monkeypatch.setattr(generation, "WRITE_CHUNK_PROMPTS", 2)  # 3 prompts: two chunks
    report = generate_batch(
        project=project,
        policy=register("policy"),
        prompts=prompts,
        sampling=replace(SAMPLING, n=4),
        pairing=Pairing.RANDOM,
        pairs_per_prompt=3,
    )
    assert report.empty_skipped == len(prompts)
    assert report.responses_existing == 1
    assert report.responses_created == 3 * len(prompts) - 1
    assert set(Response.objects.values_list("content", flat=True)) == {"one", "two", "three"}
    imported.refresh_from_db()
    assert imported.source == ResponseSource.IMPORTED  # kept as it was
    assert Comparison.objects.filter(prompt=prompts[0]).count() == 3
    assert report.comparisons_created == 3 * len(prompts)


@pytest.mark.django_db
def test_a_failed_write_leaves_nothing_behind(
    setup: tuple[Project, list[Prompt]],
    register: Callable[..., ModelArtifact],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project, prompts = setup
    policy = register("policy")
    monkeypatch.setattr(generation, "generate_candidates", _fake_generator(["a", "b"]))

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    before = _row_counts()
    with monkeypatch.context() as patch:
        # the last write, after the responses and comparisons (COPY on PostgreSQL, bulk
        # inserts elsewhere): the whole publication rolls back
        patch.setattr(generation_publish, "record_batch_metadata", boom)
        with pytest.raises(RuntimeError, match="disk full"):
            generate_batch(
                project=project, policy=policy, prompts=prompts, sampling=SAMPLING, pairing="random"
            )
    assert _row_counts() == before

    real = generation.generate_candidates

    def delete_a_prompt_meanwhile(*args: Any, **kwargs: Any) -> list[list[Candidate]]:
        Prompt.objects.filter(pk=prompts[1].pk).delete()
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "generate_candidates", delete_a_prompt_meanwhile)
    before = _row_counts()
    with pytest.raises(PromptsChanged) as caught:
        generate_batch(
            project=project, policy=policy, prompts=prompts, sampling=SAMPLING, pairing="random"
        )
    assert isinstance(caught.value, ConflictError)
    assert _row_counts() == before


class WorkerDied(BaseException):
    """Stands for SIGKILL: not an ``Exception``, so nothing marks the run failed."""


@pytest.mark.django_db
def test_a_generation_run_killed_after_writing_is_published_once(
    setup: tuple[Project, list[Prompt]],
    register: Callable[..., ModelArtifact],
    make_user: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch and the run's success commit together: a worker dying between the two
    leaves neither, and the re-delivered run publishes the batch once."""
    from training import generation_runs
    from training.generation_runs import create_generation_run, execute_generation_run
    from training.models import RunStatus

    project, _ = setup
    policy = register("policy", project=project)
    monkeypatch.setattr(generation, "generate_candidates", _fake_generator(["a", "b", "c"]))
    run = create_generation_run(
        project=project,
        base_artifact_id=policy.id,
        config={"pairing": "random", "sampling": {"n": 3, "max_new_tokens": 4}},
        user=make_user("engineer"),
    )
    before = _row_counts()

    real_finish = generation_runs.finish_succeeded

    def die_after_finishing(*args: Any, **kwargs: Any) -> Any:
        real_finish(*args, **kwargs)
        raise WorkerDied  # after the success was written, before the transaction committed

    with monkeypatch.context() as patch:
        patch.setattr(generation_runs, "finish_succeeded", die_after_finishing)
        with pytest.raises(WorkerDied):
            execute_generation_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.output_batch_id is None
    assert _row_counts() == before  # no batch without its run

    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)  # the watchdog
    done = execute_generation_run(run.pk)
    assert done.status == RunStatus.SUCCEEDED and done.attempts == 2
    batches = list(Batch.objects.filter(project=project, source=BatchSource.GENERATION))
    assert done.output_batch_id is not None
    assert [b.id for b in batches] == [done.output_batch_id]
    assert done.metrics["batch_id"] == done.output_batch_id
    _check_batch(project, done.output_batch_id)

    again = execute_generation_run(run.pk)  # a re-delivered message of a finished run
    assert again.status == RunStatus.SUCCEEDED
    assert Batch.objects.filter(project=project, source=BatchSource.GENERATION).count() == 1


@pytest.mark.django_db
def test_a_generation_attempt_taken_over_meanwhile_publishes_no_batch(
    setup: tuple[Project, list[Prompt]],
    register: Callable[..., ModelArtifact],
    make_user: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    """While attempt 1 generates, the watchdog re-queues the run and attempt 2 claims it:
    attempt 1's batch is rolled back with its refused success; the run is attempt 2's."""
    from datetime import timedelta

    from django.utils import timezone

    from training.generation_runs import create_generation_run, execute_generation_run
    from training.models import RunStatus
    from training.run_lifecycle import claim_run, reap_stalled_runs

    project, _ = setup
    policy = register("policy", project=project)
    fake = _fake_generator(["a", "b", "c"])
    run = create_generation_run(
        project=project,
        base_artifact_id=policy.id,
        config={"pairing": "random", "sampling": {"n": 3, "max_new_tokens": 4}},
        user=make_user("engineer"),
    )
    before = _row_counts()
    taken_over: list[Any] = []

    def slow_generation_taken_over(*args: Any, **kwargs: Any) -> Any:
        stale = timezone.now() - timedelta(seconds=settings.PREFLAB_RUN_HEARTBEAT_TIMEOUT + 5)
        TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=stale)
        assert reap_stalled_runs()["requeued"] == [run.pk]
        second = claim_run(run.pk)  # another worker
        assert second is not None and second.number == 2
        taken_over.append(TrainingRun.objects.filter(pk=run.pk).values().get())
        return fake(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(generation, "generate_candidates", slow_generation_taken_over)
        left = execute_generation_run(run.pk)
    assert left.status == RunStatus.RUNNING and left.attempts == 2
    assert left.output_batch_id is None
    assert _row_counts() == before  # the stale attempt's batch was not created
    assert TrainingRun.objects.filter(pk=run.pk).values().get() == taken_over[0]

    # the run's owner (here a third attempt, after a re-queue) publishes exactly one batch
    monkeypatch.setattr(generation, "generate_candidates", fake)
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)  # the watchdog
    done = execute_generation_run(run.pk)
    assert done.status == RunStatus.SUCCEEDED and done.attempts == 3
    assert [b.id for b in Batch.objects.filter(project=project, source=BatchSource.GENERATION)] == [
        done.output_batch_id
    ]


@pytest.fixture
def no_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("validation must come before any model work")

    monkeypatch.setattr(generation, "generate_candidates", fail)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        ("best_vs_worst without reward", RewardModelRequired, "reward_model_required"),
        ("uncertain without reward", RewardModelRequired, "reward_model_required"),
        ("new_vs_previous without compare", ComparePolicyRequired, "compare_policy_required"),
        ("policy of another project", ArtifactOfAnotherProject, "artifact_of_another_project"),
        ("reward model as policy", WrongArtifactKind, "wrong_artifact_kind"),
        ("policy as reward model", WrongArtifactKind, "wrong_artifact_kind"),
        ("no prompts", NoPrompts, "no_prompts"),
        ("prompt of another project", PromptOfAnotherProject, "prompt_of_another_project"),
        ("bad sampling", InvalidSamplingConfig, "invalid_config"),
        ("one candidate to pair", InvalidGeneration, "invalid_generation"),
        ("compare_policy without new_vs_previous", InvalidGeneration, "invalid_generation"),
        ("pairs_per_prompt not a number", InvalidGeneration, "invalid_generation"),
    ],
)
def test_invalid_requests_raise_typed_errors_and_write_nothing(
    setup: tuple[Project, list[Prompt]],
    register: Callable[..., ModelArtifact],
    no_generation: None,
    case: str,
    error: type[InvalidInputError],
    code: str,
) -> None:
    project, prompts = setup
    other = create_project(name="other")
    kwargs: dict[str, Any] = {
        "project": project,
        "policy": register("policy"),
        "prompts": prompts,
        "sampling": SAMPLING,
        "pairing": Pairing.BEST_VS_WORST,
        "reward": register("reward", ArtifactKind.REWARD),
    }
    match case:
        case "best_vs_worst without reward":
            kwargs["reward"] = None
        case "uncertain without reward":
            kwargs |= {"pairing": Pairing.UNCERTAIN, "reward": None}
        case "new_vs_previous without compare":
            kwargs["pairing"] = Pairing.NEW_VS_PREVIOUS
        case "policy of another project":
            kwargs["policy"] = register("previous", project=other)
        case "reward model as policy":
            kwargs["policy"] = kwargs["reward"]
        case "policy as reward model":
            kwargs["reward"] = register("previous")
        case "no prompts":
            kwargs["prompts"] = []
        case "prompt of another project":
            stranger = Prompt.objects.create(project=other, external_id="x", messages=[])
            kwargs["prompts"] = [*prompts, stranger]
        case "bad sampling":
            kwargs["sampling"] = replace(SAMPLING, temperature=0.0, top_p=2.0)
        case "one candidate to pair":
            kwargs["sampling"] = replace(SAMPLING, n=1)
        case "compare_policy without new_vs_previous":
            kwargs["compare_policy"] = register("previous")
        case "pairs_per_prompt not a number":
            kwargs["pairs_per_prompt"] = None
    before = _row_counts()
    with pytest.raises(error):  # what a run's API calls when the run is queued
        check_generation_request(**kwargs)
    with pytest.raises(error) as caught:
        generate_batch(**kwargs)
    assert isinstance(caught.value, InvalidInputError)
    assert caught.value.code == code and caught.value.status_code == 400
    assert caught.value.extra["fields"]
    if case == "bad sampling":
        assert set(caught.value.extra["fields"]) == {"temperature", "top_p"}
    assert _row_counts() == before


@pytest.mark.django_db
def test_a_generation_run_asking_for_vllm_wrongly_is_refused_when_queued(
    setup: tuple[Project, list[Prompt]],
    register: Callable[..., ModelArtifact],
    make_user: Any,
    client: Any,
) -> None:
    """``use_vllm`` is checked with the rest of the sampling config: a bad value, or one that
    contradicts ``backend``, is a 400 naming the fields; nothing is queued."""
    project, _ = setup
    policy = register("policy", project=project)
    engineer = make_user("engineer")
    set_membership(project=project, user=engineer, role=Role.ML_ENGINEER)
    client.force_login(engineer)
    url = f"/api/projects/{project.id}/training-runs/"
    for sampling, fields in [
        ({"n": 2, "use_vllm": "yes"}, {"use_vllm"}),
        ({"n": 2, "use_vllm": True, "backend": "transformers"}, {"use_vllm", "backend"}),
    ]:
        response = client.post(
            url,
            {
                "kind": "generate",
                "base_artifact": policy.id,
                "config": {"pairing": "random", "sampling": sampling},
            },
            content_type="application/json",
        )
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "invalid_config" and body["message"]
        assert set(body["extra"]["fields"]) == fields
    assert not TrainingRun.objects.filter(project=project).exists()
