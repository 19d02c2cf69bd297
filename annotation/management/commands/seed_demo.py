"""Seed the demo: users with each role and two projects.

- "Demo: assistant helpfulness": readable prompts with 3 candidates each, nobody has judged
  them yet (annotate them yourself).
- "Demo: RLHF loop (synthetic words)": the synthetic gold task
  (:mod:`training.ml.synthetic`) — candidates sampled from a tiny word policy, judged over
  the past six weeks by simulated annotators through the queue's services
  (:mod:`annotation.simulated_history`), a quality snapshot, and round defaults that fit the
  task, so that a round started from the ML console trains a reward model on a real split
  and publishes readable responses (:mod:`training.demo`).

Idempotent: running it again keeps what is there (and re-prints the logins).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from annotation.importing import ImportOptions, Pairing, import_comparisons
from annotation.models import Project
from annotation.roles import Role
from annotation.services import create_project, set_membership
from training.demo import ANNOTATORS as LOOP_ANNOTATORS
from training.demo import LoopSeedReport, seed_loop_project

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo_data" / "demo_prompts.jsonl"
DEMO_PROJECT = "Demo: assistant helpfulness"
DEMO_PASSWORD = os.environ.get("PREFLAB_DEMO_PASSWORD", "preflab-demo")
INSTRUCTIONS = """\
## Which response is more helpful?

Read the conversation, then both responses. Pick the one that a careful expert would
rather send: **correct** first, then **helpful** and **clear**. Length is not quality.

- `1` / `←` — left is better, `2` / `→` — right is better
- `t` — tie, `b` — both bad
- strength: `q` significantly, `w` better, `e` slightly, `r` negligibly
- `Enter` — submit

Check code and numbers: a confident wrong answer is worse than a short right one.
"""

USERS: list[tuple[str, str | None, bool]] = [
    ("admin", None, True),
    ("alice", Role.ANNOTATOR, False),
    ("bob", Role.ANNOTATOR, False),
    ("carol", Role.ANNOTATOR, False),
    ("priya", Role.PROJECT_ADMIN, False),
    ("mlee", Role.ML_ENGINEER, False),
]


class Command(BaseCommand):
    help = (
        "Create demo users, a project with 30 prompts × 3 candidate responses to annotate, "
        "and an RLHF-loop project with weeks of simulated judgments."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        with transaction.atomic():
            project = self._project()
            created_users = self._users(project)
            if not project.comparisons.exists():
                with DEMO_FILE.open("rb") as stream:
                    report = import_comparisons(
                        project=project,
                        stream=stream,
                        options=ImportOptions(pairing=Pairing.ALL_PAIRS, batch_name="Demo"),
                        source_name=DEMO_FILE.name,
                    )
                self.stdout.write(
                    f"Demo project: {report.prompts_created} prompts, "
                    f"{report.comparisons_created} comparisons."
                )
        self._tiny_models()
        loop = self._loop_project()
        created_users |= loop.created_users
        self.stdout.write(self.style.SUCCESS(f"Demo project #{project.id}: {project.name}"))
        self.stdout.write(
            self.style.SUCCESS(f"Demo project #{loop.project.id}: {loop.project.name}")
        )
        self.stdout.write(
            f"  {loop.comparisons} comparisons, {loop.project.judgments.count()} judgments; "
            f"starting policy #{loop.policy.pk} ({loop.policy.name}). "
            "Try: log in as mlee, open its ML console, start a round."
        )
        self.stdout.write(f"Logins (password for all: {DEMO_PASSWORD}):")
        for username, role, is_super in USERS:
            label = "superuser" if is_super else str(Role(role).label if role else "")
            note = " (new)" if username in created_users else ""
            self.stdout.write(f"  {username:<8} {label}{note}")
        for username, _, _ in LOOP_ANNOTATORS:
            note = " (new)" if username in created_users else ""
            self.stdout.write(f"  {username:<8} Annotator, RLHF loop (simulated){note}")
        self.stdout.write(f"Seeded in {time.monotonic() - started:.1f} s.")

    def _loop_project(self) -> LoopSeedReport:
        users = get_user_model().objects
        report = seed_loop_project(
            password=DEMO_PASSWORD,
            admin=users.get(username="priya"),
            engineer=users.get(username="mlee"),
            humans=list(users.filter(username__in=["alice", "bob", "carol"]).order_by("id")),
        )
        h = report.history
        if h is not None and h.first is not None and h.last is not None:
            self.stdout.write(
                f"RLHF loop project: {h.judgments} simulated judgments from "
                f"{h.first:%Y-%m-%d} to {h.last:%Y-%m-%d} (rule agreement {h.agreement})."
            )
        return report

    def _tiny_models(self) -> None:
        """A tiny tokenizer and policy in the registry, for training runs in the demo."""
        from training.models import ModelArtifact

        if not ModelArtifact.objects.filter(kind="policy", project__isnull=True).exists():
            call_command("create_tiny_models", stdout=self.stdout)

    def _project(self) -> Project:
        project = Project.objects.filter(name=DEMO_PROJECT).first()
        if project is None:
            project = create_project(
                name=DEMO_PROJECT,
                description="Pick the more helpful of two assistant responses.",
                instructions=INSTRUCTIONS,
                overlap_k=3,
            )
        return project

    def _users(self, project: Project) -> set[str]:
        user_model = get_user_model()
        created: set[str] = set()
        for username, role, is_super in USERS:
            user = user_model.objects.filter(username=username).first()
            if user is None:
                user = user_model.objects.create_user(
                    username=username,
                    password=DEMO_PASSWORD,
                    is_superuser=is_super,
                    is_staff=is_super,
                )
                created.add(username)
            if role:
                set_membership(project=project, user=user, role=role)
        return created
