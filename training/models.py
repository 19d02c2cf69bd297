"""Training domain: the model registry (artifacts), training runs and RLHF rounds.

An artifact is a directory that ``from_pretrained`` loads (tokenizer, policy, reward or value
model). One made by Preflab lives under ``ARTIFACT_ROOT`` and is registered only when complete:
written under a temporary name, then renamed into place (see ``training.registry``). One an ML
engineer brings (``training.model_registration``) stays where it is, under one of
``PREFLAB_MODEL_ROOTS``, and is referenced by its absolute path.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ArtifactKind(models.TextChoices):
    TOKENIZER = "tokenizer", "Tokenizer"
    POLICY = "policy", "Policy"
    REWARD = "reward", "Reward model"
    VALUE = "value", "Value model"


class ArtifactOrigin(models.TextChoices):
    PREFLAB = "preflab", "Made by Preflab"
    REGISTERED = "registered", "Registered from an existing directory"


class ModelArtifact(models.Model):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=ArtifactKind.choices)
    path = models.CharField(
        max_length=1024,
        unique=True,
        help_text="Relative to ARTIFACT_ROOT (made by Preflab), or absolute (registered in place).",
    )
    origin = models.CharField(
        max_length=12, choices=ArtifactOrigin.choices, default=ArtifactOrigin.PREFLAB
    )
    model_info = models.JSONField(
        default=dict,
        blank=True,
        help_text="What validation recorded of a registered directory "
        "(training.model_registration.ModelInfo); empty for Preflab's own artifacts.",
    )
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


class RunKind(models.TextChoices):
    REWARD = "reward", "Reward model"
    PPO = "ppo", "PPO policy optimization"
    GRPO = "grpo", "GRPO policy optimization (TRL)"
    RLOO = "rloo", "RLOO policy optimization (TRL)"
    DPO = "dpo", "DPO on a dataset export (TRL)"
    GENERATE = "generate", "Candidate generation into a batch"


POLICY_KINDS = (RunKind.PPO, RunKind.GRPO, RunKind.RLOO, RunKind.DPO)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class TrainingRun(models.Model):
    """One training job. The row, not the broker, is the source of truth: a task re-delivered
    after its worker died reads the row and resumes from the last checkpoint."""

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.PROTECT, related_name="training_runs"
    )
    kind = models.CharField(max_length=10, choices=RunKind.choices)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    config = models.JSONField(help_text="The validated configuration.")
    dataset_export = models.ForeignKey(
        "annotation.DatasetExport",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="training_runs",
        help_text="Training data (reward and DPO runs).",
    )
    base_artifact = models.ForeignKey(
        ModelArtifact,
        on_delete=models.PROTECT,
        related_name="runs_started_from",
        help_text="The model trained from (the policy that generates, for generation).",
    )
    reward_artifact = models.ForeignKey(
        ModelArtifact,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs_scored_by",
        help_text="The reward model (or ensemble) of PPO/GRPO/RLOO and reward-based pairing.",
    )
    compare_artifact = models.ForeignKey(
        ModelArtifact,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Generation: the previous policy its candidates are paired against.",
    )
    prompt_ids = models.JSONField(
        default=list, blank=True, help_text="Prompts used (empty: all the project's prompts)."
    )
    output_batch = models.ForeignKey(
        "annotation.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    output_artifact = models.ForeignKey(
        ModelArtifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    launcher = models.CharField(
        max_length=40,
        default="inprocess",
        help_text="How the step executes (training.launch: inprocess, subprocess, accelerate, …);"
        " checked against the registered launchers when the run is created.",
    )
    launcher_options = models.JSONField(
        default=dict, blank=True, help_text="The launcher's options (e.g. num_processes, config)."
    )
    progress = models.FloatField(default=0.0)
    metrics = models.JSONField(default=dict, blank=True, help_text="Latest logged values.")
    log_tail = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    worker = models.CharField(max_length=200, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(
        default=3, help_text="Attempts before a run whose worker keeps dying is failed."
    )
    on_worker_lost = models.CharField(
        max_length=8,
        choices=[("requeue", "Re-queue and resume"), ("fail", "Mark failed")],
        default="requeue",
    )
    cancel_requested = models.BooleanField(default=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} ({self.status})"


class RunMetric(models.Model):
    """Step-level metrics of a run, as the trainer logs them."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metric_rows")
    step = models.PositiveIntegerField()
    values = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "step", "id"]
        indexes = [models.Index(fields=["run", "step"])]

    def __str__(self) -> str:
        return f"run {self.run_id} step {self.step}"


class RoundStep(models.TextChoices):
    COLLECT = "collect", "Collect feedback"
    EXPORT = "export", "Export a dataset"
    REWARD = "reward", "Train a reward model"
    POLICY = "policy", "Optimize the policy"
    GENERATE = "generate", "Generate candidates"
    PUBLISHED = "published", "Published to annotators"


ROUND_STEPS = [
    RoundStep.COLLECT,
    RoundStep.EXPORT,
    RoundStep.REWARD,
    RoundStep.POLICY,
    RoundStep.GENERATE,
    RoundStep.PUBLISHED,
]


class RLHFRound(models.Model):
    """One turn of the loop: human feedback since the previous round → export → reward model
    → policy optimization → candidates of the new policy (against the previous one) published
    to the annotators. ``step`` is where the round is; each step is resumable from this row
    (a step that started a run waits for it, and never starts it twice)."""

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.PROTECT, related_name="rlhf_rounds"
    )
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    step = models.CharField(max_length=10, choices=RoundStep.choices, default=RoundStep.COLLECT)
    steps = models.JSONField(
        default=dict, blank=True, help_text="Per step: status, started_at, finished_at, detail."
    )
    config = models.JSONField(help_text="The validated round configuration.")
    base_policy = models.ForeignKey(
        ModelArtifact,
        on_delete=models.PROTECT,
        related_name="rounds_started_from",
        help_text="The policy the round improves (the previous round's, or the first one).",
    )
    reward_base = models.ForeignKey(
        ModelArtifact,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The model reward models are trained from.",
    )
    judged_after = models.DateTimeField(null=True, blank=True)
    judged_before = models.DateTimeField(null=True, blank=True)
    dataset_export = models.ForeignKey(
        "annotation.DatasetExport",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reward_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    policy_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    generation_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reward_artifact = models.ForeignKey(
        ModelArtifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    policy_artifact = models.ForeignKey(
        ModelArtifact, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    batch = models.ForeignKey(
        "annotation.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="round_unique_number")
        ]

    def __str__(self) -> str:
        return f"round {self.number} of project {self.project_id} ({self.status})"


class RegistrationStatus(models.TextChoices):
    PENDING = "pending", "Pending validation"
    REGISTERED = "registered", "Registered"
    FAILED = "failed", "Failed"


class ModelRegistration(models.Model):
    """An ML engineer's request to register an existing model directory in place. The request
    checks where the directory is; a task validates what it holds and, on success, creates
    (or finds) the artifact."""

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="model_registrations"
    )
    path = models.CharField(max_length=1024, help_text="Absolute real path of the directory.")
    kind = models.CharField(max_length=10, choices=ArtifactKind.choices)
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=12, choices=RegistrationStatus.choices, default=RegistrationStatus.PENDING
    )
    error = models.TextField(blank=True, help_text="Why validation refused the directory.")
    info = models.JSONField(default=dict, blank=True, help_text="The recorded ModelInfo.")
    artifact = models.ForeignKey(
        ModelArtifact,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="registrations",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return f"registration {self.pk} of {self.path} ({self.status})"


class RoundDefaults(models.Model):
    """A project's starting point for RLHF rounds: the policy its first round improves and
    settings that fit its data and models. The console's start form is filled with them
    (over the built-in defaults, section by section); a round started without a base
    policy, before any round was published, starts from ``base_policy``. Written through
    :func:`training.round_config.set_round_defaults`, which validates them as a round."""

    project = models.OneToOneField(
        "annotation.Project",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="round_defaults",
    )
    base_policy = models.ForeignKey(
        ModelArtifact,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The first round's policy (later rounds start from the last published one).",
    )
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text="Round options; export/reward/policy/generation are merged key by key.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "round defaults"

    def __str__(self) -> str:
        return f"round defaults of project {self.project_id}"
