"""``manage.py export_preferences PROJECT_ID [--options JSON] [--user NAME]`` — the same
export as the API, written synchronously."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.export import create_export
from annotation.export_options import InvalidExportOptions, parse_export_options
from annotation.models import Project


class Command(BaseCommand):
    help = "Export a project's preferences (TRL format) as an immutable DatasetExport."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_id", type=int)
        parser.add_argument("--options", default="{}", help="Export options as a JSON object.")
        parser.add_argument("--user", required=True, help="Username recorded as the exporter.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(pk=options["project_id"]).first()
        if project is None:
            raise CommandError(f"No project with id {options['project_id']}.")
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        try:
            raw = json.loads(options["options"])
            export = create_export(project=project, options=parse_export_options(raw), user=user)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--options is not JSON: {exc}") from None
        except InvalidExportOptions as exc:
            raise CommandError(f"{exc.message} {exc.extra}") from None
        self.stdout.write(
            json.dumps(
                {
                    "export_id": export.pk,
                    "path": export.path,
                    "train_rows": export.train_rows,
                    "test_rows": export.test_rows,
                    "files": export.files,
                    "counts": export.counts,
                }
            )
        )
