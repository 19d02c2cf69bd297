"""The three roles of Preflab and the auth groups that carry them."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    PROJECT_ADMIN = "project_admin", "Project admin"
    ML_ENGINEER = "ml_engineer", "ML engineer"
