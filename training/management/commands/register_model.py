"""``manage.py register_model PATH --kind policy|reward|tokenizer --project ID [--name NAME]`` —
register an existing model directory in place, validated synchronously by the same service
the API's task runs; prints what it recorded, exits non-zero with the reason on failure."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from preflab.errors import DomainError
from training.model_registration import (
    REGISTRABLE_KINDS,
    request_registration,
    validate_registration,
)
from training.models import RegistrationStatus


class Command(BaseCommand):
    help = "Register an existing Hugging Face model directory (in place) as an artifact."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="Absolute path, inside one of PREFLAB_MODEL_ROOTS.")
        parser.add_argument("--kind", required=True, choices=[str(k) for k in REGISTRABLE_KINDS])
        parser.add_argument("--project", required=True, type=int, help="Project id.")
        parser.add_argument("--name", default="", help="Default: the directory's name.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(pk=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with id {options['project']}.")
        try:
            registration = request_registration(
                project=project,
                path=options["path"],
                kind=options["kind"],
                name=options["name"],
                enqueue=False,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        registration = validate_registration(registration.pk)
        if registration.status != RegistrationStatus.REGISTERED:
            raise CommandError(f"registration {registration.pk} failed: {registration.error}")
        assert registration.artifact is not None
        self.stdout.write(
            json.dumps(
                {
                    "registration": registration.pk,
                    "artifact": registration.artifact.pk,
                    "name": registration.artifact.name,
                    "kind": registration.artifact.kind,
                    "path": registration.artifact.path,
                    "info": registration.info,
                },
                indent=2,
            )
        )
