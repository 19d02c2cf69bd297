"""The demo's RLHF-loop project: the synthetic gold task with weeks of simulated feedback.

What :func:`seed_loop_project` builds (each part only when missing, so that seeding twice
keeps what is there):

1. the project, its annotators (simulated ones and the demo's humans), admin and engineer;
2. its starting policy — a tiny Llama pre-trained to answer with random task words
   (:func:`training.ml.synthetic.build_synthetic_policy`), registered for the project — and
   round defaults that fit it (the settings the end-to-end loop test trains with);
3. two candidates per prompt sampled from that policy, imported as one batch, judged by the
   simulated annotators over the past weeks through the queue's services (the gold rule plus
   per-annotator noise that shrinks as they learn), and a quality snapshot computed by the
   same code as the periodic recompute.

Everything is seeded: the same database contents come out of every run on one machine.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from annotation.importing import ImportOptions, Pairing, import_comparisons
from annotation.models import Project
from annotation.quality import recompute_quality
from annotation.roles import Role
from annotation.services import create_project, set_membership
from annotation.simulated_history import HistoryReport, SimulatedAnnotator, judge_over_time
from training.ml.synthetic import PolicyShape, build_synthetic_policy, prompt_rows
from training.models import ArtifactKind, ModelArtifact, RoundDefaults
from training.registry import artifact_dir, register_artifact, staging_dir
from training.round_config import set_round_defaults

LOOP_PROJECT = "Demo: RLHF loop (synthetic words)"
LOOP_PROMPTS = 480
LOOP_OVERLAP = 3
LOOP_WEEKS = 6
LOOP_SEED = 7
POLICY_NAME = "tiny-word-policy"
POLICY_SHAPE = PolicyShape(pretrain_steps=120, batch_size=32)
# (username, noise, median seconds per judgment): careful ones, an average one and a hasty,
# noisy one the dashboard flags
ANNOTATORS: list[tuple[str, float, float]] = [
    ("dana", 0.06, 9.0),
    ("eli", 0.08, 12.0),
    ("fay", 0.10, 7.0),
    ("gus", 0.14, 10.0),
    ("hana", 0.35, 2.2),
]
NOISE_TREND = (1.4, 0.6)  # everyone's noise, scaled from the first week to the last
ROUND_DEFAULTS: dict[str, Any] = {
    "export": {"test_fraction": 0.15},
    "reward": {"learning_rate": 0.003, "epochs": 3, "batch_size": 16, "max_length": 64},
    "policy": {
        "total_episodes": 768,
        "learning_rate": 3e-5,
        "kl_coef": 0.2,
        "auto_kl_coef": False,
        "target_kl": 2.0,
        "kl_horizon": 500,
    },
    "generation": {"sampling": {"n": 1, "max_new_tokens": 24}, "pairs_per_prompt": 1},
}
DESCRIPTION = (
    "Short answers made of words; the better answer has more good words and fewer bad ones. "
    "Simulated annotators judged it over the past weeks: start a round from the ML console."
)
INSTRUCTIONS = """\
## Which answer has the better words?

Each answer is a string of words. Some are **good**: kind, bright, calm, clear, fresh,
gentle, honest, warm, brave, wise, happy, lucid. Some are **bad**: rude, dull, harsh, vague,
stale, cruel, false, cold, timid, dumb, angry, murky. The rest are neutral.

Count good words as +1 and bad ones as −1, and divide by the number of words: pick the
answer with the higher score, `t` when they are equal. The bigger the gap, the stronger.

- `1` / `←` — left is better, `2` / `→` — right is better, `t` — tie
- strength: `q` significantly, `w` better, `e` slightly, `r` negligibly
"""


@dataclass
class LoopSeedReport:
    project: Project
    policy: ModelArtifact
    created_users: set[str]
    history: HistoryReport | None  # None when the judgments were already there
    comparisons: int


def seed_loop_project(
    *, password: str, admin: Any, engineer: Any, humans: list[Any]
) -> LoopSeedReport:
    """Create (or complete) the loop project; see the module docstring."""
    with transaction.atomic():
        project = Project.objects.filter(name=LOOP_PROJECT).first()
        if project is None:
            project = create_project(
                name=LOOP_PROJECT,
                description=DESCRIPTION,
                instructions=INSTRUCTIONS,
                overlap_k=LOOP_OVERLAP,
                allow_both_bad=False,
            )
        set_membership(project=project, user=admin, role=Role.PROJECT_ADMIN)
        set_membership(project=project, user=engineer, role=Role.ML_ENGINEER)
        for human in humans:
            set_membership(project=project, user=human, role=Role.ANNOTATOR)
        annotators, created = _annotators(project, password)
    policy = _policy(project)
    history = None
    if not project.comparisons.exists():
        with transaction.atomic():
            _import_candidates(project, policy)
            end = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
            history = judge_over_time(
                project=project,
                annotators=annotators,
                start=_weeks_before(end, LOOP_WEEKS),
                end=end,
                seed=LOOP_SEED,
                noise_trend=NOISE_TREND,
            )
            recompute_quality(project_id=project.id)
    return LoopSeedReport(
        project=project,
        policy=policy,
        created_users=created,
        history=history,
        comparisons=project.comparisons.count(),
    )


def _weeks_before(end: datetime, weeks: int) -> datetime:
    """Midnight, ``weeks`` weeks before ``end``'s day."""
    return (end - timedelta(weeks=weeks)).replace(hour=0, minute=0, second=0, microsecond=0)


def _annotators(project: Project, password: str) -> tuple[list[SimulatedAnnotator], set[str]]:
    users = get_user_model()
    out: list[SimulatedAnnotator] = []
    created: set[str] = set()
    for username, noise, seconds in ANNOTATORS:
        user = users.objects.filter(username=username).first()
        if user is None:
            user = users.objects.create_user(username=username, password=password)
            created.add(username)
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
        out.append(SimulatedAnnotator(user=user, noise=noise, median_seconds=seconds))
    return out, created


def _policy(project: Project) -> ModelArtifact:
    """The project's starting policy (built and registered once) and its round defaults."""
    defaults = RoundDefaults.objects.filter(project=project).select_related("base_policy").first()
    if defaults is not None and defaults.base_policy is not None:
        return defaults.base_policy
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and steady on a busy host
    work = Path(tempfile.mkdtemp(prefix="demo-policy-"))
    try:
        build_synthetic_policy(work / "policy", shape=POLICY_SHAPE, seed=LOOP_SEED)
        info = json.loads((work / "policy" / "preflab_synthetic.json").read_text())
        staged = staging_dir("demo-policy")
        shutil.copytree(work / "policy", staged, dirs_exist_ok=True)
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(work, ignore_errors=True)
    policy = register_artifact(
        source=staged,
        name=POLICY_NAME,
        kind=ArtifactKind.POLICY,
        project=project,
        metrics={
            "task": "gold-words",
            "hidden": POLICY_SHAPE.hidden,
            "layers": POLICY_SHAPE.layers,
            "pretrain_steps": POLICY_SHAPE.pretrain_steps,
            "final_loss": info["final_loss"],
        },
    )
    set_round_defaults(project=project, config=ROUND_DEFAULTS, base_policy_id=policy.pk)
    return policy


def _import_candidates(project: Project, policy: ModelArtifact) -> None:
    """Two distinct, non-empty answers per prompt sampled from the policy, as one batch."""
    import torch

    from training.ml.generation import SamplingConfig, generate_candidates

    prompts = [row["prompt"] for row in prompt_rows(LOOP_PROMPTS, LOOP_SEED)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sampled = generate_candidates(
            artifact_dir(policy),
            prompts,
            SamplingConfig(n=3, temperature=1.0, max_new_tokens=24, batch_size=160, seed=LOOP_SEED),
            device="cpu",
        )
    finally:
        torch.set_num_threads(threads)
    lines = []
    for i, (prompt, candidates) in enumerate(zip(prompts, sampled, strict=True)):
        texts = list(dict.fromkeys(c.text for c in candidates if c.text and c.finished))[:2]
        if len(texts) < 2:
            continue
        record = {
            "id": f"loop-{i:04d}",
            "prompt": prompt,
            "responses": [
                {"content": text, "metadata": {"policy": POLICY_NAME, "artifact": policy.pk}}
                for text in texts
            ],
        }
        lines.append(json.dumps(record))
    import_comparisons(
        project=project,
        stream=io.BytesIO(("\n".join(lines) + "\n").encode()),
        options=ImportOptions(pairing=Pairing.ALL_PAIRS, batch_name="Sampled from the start"),
        source_name="tiny-word-policy-samples.jsonl",
    )
