"""``manage.py train_reward_model PROJECT_ID --export ID --base ARTIFACT_ID --user NAME
[--config JSON] [--wait]`` — queue a reward-model run (or run it here with ``--wait``)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from preflab.errors import DomainError
from training.reward_runs import create_reward_run, execute_reward_run


class Command(BaseCommand):
    help = "Create a reward-model training run from a dataset export."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_id", type=int)
        parser.add_argument("--export", type=int, required=True, help="DatasetExport id.")
        parser.add_argument("--base", type=int, required=True, help="Base model artifact id.")
        parser.add_argument("--user", required=True, help="Username recorded as the creator.")
        parser.add_argument("--config", default="{}", help="Trainer config as a JSON object.")
        parser.add_argument(
            "--wait", action="store_true", help="Train in this process instead of on a gpu worker."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(pk=options["project_id"]).first()
        user = get_user_model().objects.filter(username=options["user"]).first()
        if project is None or user is None:
            raise CommandError("Unknown project or user.")
        try:
            config = json.loads(options["config"])
            run = create_reward_run(
                project=project,
                dataset_export_id=options["export"],
                base_artifact_id=options["base"],
                config=config,
                user=user,
            )
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not JSON: {exc}") from None
        except DomainError as exc:
            raise CommandError(f"{exc.message} {exc.extra or ''}".strip()) from None
        if options["wait"]:
            run = execute_reward_run(run.pk)
        self.stdout.write(
            json.dumps({"run_id": run.pk, "status": run.status, "metrics": run.metrics})
        )
