"""``manage.py import_comparisons PROJECT_ID FILE`` — the same import as the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.importing import ImportOptions, ImportRejected, Pairing, import_comparisons
from annotation.models import Project


class Command(BaseCommand):
    help = "Import comparisons from a JSONL file (or a JSON array) into a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_id", type=int)
        parser.add_argument("file", type=Path)
        parser.add_argument("--pairing", choices=[p.value for p in Pairing], default="all_pairs")
        parser.add_argument("--pairs-per-prompt", type=int, default=3)
        parser.add_argument("--skip-bad-lines", action="store_true")
        parser.add_argument("--batch-name", default="")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(pk=options["project_id"]).first()
        if project is None:
            raise CommandError(f"No project with id {options['project_id']}.")
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        import_options = ImportOptions(
            pairing=Pairing(options["pairing"]),
            pairs_per_prompt=options["pairs_per_prompt"],
            skip_bad_lines=options["skip_bad_lines"],
            batch_name=options["batch_name"],
            seed=options["seed"],
        )
        try:
            with path.open("rb") as stream:
                report = import_comparisons(
                    project=project, stream=stream, options=import_options, source_name=path.name
                )
        except ImportRejected as exc:
            for bad in exc.extra.get("bad_lines", []):
                self.stderr.write(f"{path}:{bad['line']}: {bad['message']}")
            raise CommandError(exc.message) from None
        for bad in report.bad_lines:
            self.stderr.write(f"skipped {path}:{bad.line}: {bad.message}")
        self.stdout.write(json.dumps(report.as_dict() | {"bad_lines": len(report.bad_lines)}))
