"""Training domain: the model registry (artifacts), training runs and RLHF rounds.

An artifact is a directory under ``ARTIFACT_ROOT`` that ``from_pretrained`` loads (tokenizer,
policy, reward or value model). It is registered only when complete: written under a
temporary name, then renamed into place (see ``training.registry``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ArtifactKind(models.TextChoices):
    TOKENIZER = "tokenizer", "Tokenizer"
    POLICY = "policy", "Policy"
    REWARD = "reward", "Reward model"
    VALUE = "value", "Value model"


class ModelArtifact(models.Model):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=ArtifactKind.choices)
    path = models.CharField(max_length=500, unique=True, help_text="Relative to ARTIFACT_ROOT.")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    dataset_export = models.ForeignKey(
        "annotation.DatasetExport",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="artifacts",
    )
    project = models.ForeignKey(
        "annotation.Project",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="artifacts",
    )
    metrics = models.JSONField(default=dict, blank=True)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, help_text="Over the files' relative paths and bytes.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"
