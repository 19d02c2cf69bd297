"""``manage.py simulate_annotators PROJECT_ID --url http://127.0.0.1:8000 [options]`` —
simulated annotators judge the project's queue through the HTTP API of a running server
(which must use this process's database: the annotators and their tokens are created here,
users PREFIX-1 … PREFIX-M with unusable passwords).
Prints the report as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from annotation.simulation import (
    NOISE_SCOPES,
    RULES,
    InvalidSimulationConfig,
    SimulationConfig,
    simulate,
)


class Command(BaseCommand):
    help = "Simulated annotators judge a project's queue over HTTP; prints a JSON report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_id", type=int)
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The server.")
        parser.add_argument("--annotators", type=int, default=5)
        parser.add_argument("--noise", type=float, default=0.0, help="Flip probability, 0–1.")
        parser.add_argument(
            "--position-bias", type=float, default=0.0, help="Probability of 'left', 0–1."
        )
        parser.add_argument("--rule", default="gold_words", help=f"One of {', '.join(RULES)}.")
        parser.add_argument("--max-judgments", type=int, default=None)
        parser.add_argument("--seconds", type=float, default=None)
        parser.add_argument("--think-ms", type=int, default=0)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--noise-scope",
            default="judgment",
            choices=NOISE_SCOPES,
            help="judgment: independent noise per judgment; item: keyed by the pair "
            "(reproducible whichever annotator gets it).",
        )
        parser.add_argument("--prefix", default="sim", help="Usernames PREFIX-1 … PREFIX-M.")
        parser.add_argument(
            "--both-bad-below",
            type=float,
            default=None,
            help="Answer 'both bad' (where allowed) when both scores are below this.",
        )
        parser.add_argument(
            "--keep-alive",
            action="store_true",
            help="Reuse one connection per annotator (not with Django's runserver: it stalls).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = SimulationConfig(
                annotators=options["annotators"],
                noise=options["noise"],
                position_bias=options["position_bias"],
                rule=options["rule"],
                max_judgments=options["max_judgments"],
                seconds=options["seconds"],
                think_ms=options["think_ms"],
                seed=options["seed"],
                noise_scope=options["noise_scope"],
                prefix=options["prefix"],
                both_bad_below=options["both_bad_below"],
                keep_alive=options["keep_alive"],
            )
        except InvalidSimulationConfig as exc:
            raise CommandError(exc.message) from None
        project = Project.objects.filter(pk=options["project_id"]).first()
        if project is None:
            raise CommandError(f"No project with id {options['project_id']}.")
        try:
            report = simulate(base_url=options["url"], project_id=project.pk, config=config)
        except InvalidSimulationConfig as exc:  # a malformed --url
            raise CommandError(exc.message) from None
        self.stdout.write(json.dumps(report.as_dict(), indent=2))
