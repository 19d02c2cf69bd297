"""``manage.py rlhf_round start|status|cancel|retry PROJECT_ID …`` — drive RLHF rounds from
scripts. ``start`` queues the next round (workers advance it); ``--wait`` polls until it
finishes. Output is JSON: the round(s) as the API shows them."""

from __future__ import annotations

import json
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from preflab.errors import DomainError
from training import rounds
from training.models import TERMINAL_STATUSES, RLHFRound
from training.serializers import RoundSerializer


class Command(BaseCommand):
    help = "Start, inspect, cancel or retry RLHF rounds of a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "status", "cancel", "retry"])
        parser.add_argument("project_id", type=int)
        parser.add_argument("--round", type=int, help="Round number (status: default all).")
        parser.add_argument("--user", help="start: username recorded as the creator.")
        parser.add_argument("--base-policy", type=int, help="start: policy artifact id.")
        parser.add_argument("--config", default="{}", help="start: round config (JSON).")
        parser.add_argument("--wait", action="store_true", help="start/retry: until finished.")
        parser.add_argument("--timeout", type=float, default=3600, help="--wait limit (s).")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(pk=options["project_id"]).first()
        if project is None:
            raise CommandError(f"No project {options['project_id']}.")
        action = options["action"]
        try:
            if action == "status":
                rows = RLHFRound.objects.filter(project=project)
                if options["round"] is not None:
                    rows = rows.filter(number=options["round"])
                self._print(list(rows.order_by("number")))
                return
            if action == "start":
                r = self._start(project, options)
            else:
                r = self._numbered(project, options["round"])
                r = rounds.cancel_round(r=r) if action == "cancel" else rounds.retry_round(r=r)
        except DomainError as exc:
            raise CommandError(f"{exc.message} {exc.extra or ''}".strip()) from None
        if options["wait"] and action in ("start", "retry"):
            deadline = time.monotonic() + options["timeout"]
            while r.status not in TERMINAL_STATUSES:
                if time.monotonic() > deadline:
                    raise CommandError(f"Round {r.number} still {r.status} at {r.step}.")
                time.sleep(1)
                r.refresh_from_db()
        self._print([r])

    def _start(self, project: Project, options: dict[str, Any]) -> RLHFRound:
        user = get_user_model().objects.filter(username=options["user"] or "").first()
        if user is None:
            raise CommandError("start needs --user NAME of an existing user.")
        try:
            config = json.loads(options["config"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not JSON: {exc}") from None
        return rounds.start_round(
            project=project, config=config, base_policy_id=options["base_policy"], user=user
        )

    def _numbered(self, project: Project, number: int | None) -> RLHFRound:
        if number is None:
            raise CommandError("--round N is required.")
        r = RLHFRound.objects.filter(project=project, number=number).first()
        if r is None:
            raise CommandError(f"Project {project.pk} has no round {number}.")
        return r

    def _print(self, rows: list[RLHFRound]) -> None:
        self.stdout.write(json.dumps(RoundSerializer(rows, many=True).data, indent=2, default=str))
