"""``manage.py create_tiny_models`` — build a tiny tokenizer and causal LM locally and register
them as artifacts (no hub access; the demo and the tests use them)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from annotation.models import Prompt, Response
from training.ml.tiny import build_causal_lm, build_tokenizer
from training.models import ArtifactKind
from training.registry import register_artifact, staging_dir


class Command(BaseCommand):
    help = "Train a tiny BPE tokenizer on the project texts and build a tiny Llama policy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--vocab-size", type=int, default=512)
        parser.add_argument("--hidden", type=int, default=64)
        parser.add_argument("--layers", type=int, default=2)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        texts = list(Response.objects.values_list("content", flat=True)[:20_000])
        texts += [
            m["content"]
            for messages in Prompt.objects.values_list("messages", flat=True)[:20_000]
            for m in messages
        ]
        if not texts:
            texts = ["Preflab tiny model corpus: a helpful, correct and clear answer."] * 10
        tokenizer_dir = build_tokenizer(
            texts, staging_dir("tokenizer"), vocab_size=options["vocab_size"]
        )
        policy_dir = build_causal_lm(
            tokenizer_dir,
            staging_dir("policy"),
            hidden=options["hidden"],
            layers=options["layers"],
            seed=options["seed"],
        )
        tokenizer = register_artifact(
            source=tokenizer_dir, name="tiny-tokenizer", kind=ArtifactKind.TOKENIZER
        )
        policy = register_artifact(
            source=policy_dir,
            name="tiny-llama",
            kind=ArtifactKind.POLICY,
            parent=tokenizer,
            metrics={"hidden": options["hidden"], "layers": options["layers"]},
        )
        self.stdout.write(json.dumps({"tokenizer": tokenizer.path, "policy": policy.path}))
