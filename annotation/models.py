"""Annotation domain: projects, prompts, responses, batches, comparisons, leases, judgments.

Invariants (see DESIGN.md, "The queue") are enforced by the database where it can:
- ``Assignment`` is unique per (comparison, annotator): nobody judges a comparison twice;
- ``Judgment`` is one-to-one with its assignment: a retried submit cannot create a second one;
- ``Comparison`` keeps ``judgment_count + lease_count <= target_votes`` as a CHECK constraint,
  with both counters updated in the same transaction as the rows they count.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from annotation.roles import Role

GOLD_TARGET_VOTES = 32767  # gold items are shown once to every annotator, not k times


class RationaleMode(models.TextChoices):
    OFF = "off", "Off"
    OPTIONAL = "optional", "Optional"
    REQUIRED = "required", "Required"


class Choice(models.TextChoices):
    """A judgment in canonical terms (A and B are the comparison's stored order)."""

    A = "A", "A is better"
    B = "B", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Strength(models.IntegerChoices):
    """Llama-2's four-level scale; signed by the choice it becomes −4 … +4."""

    NEGLIGIBLY = 1, "Negligibly better / unsure"
    SLIGHTLY = 2, "Slightly better"
    BETTER = 3, "Better"
    SIGNIFICANTLY = 4, "Significantly better"


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    instructions = models.TextField(blank=True, default="", help_text="Markdown.")
    overlap_k = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Distinct annotators per comparison.",
    )
    lease_ttl_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(30), MaxValueValidator(24 * 3600)]
    )
    allow_tie = models.BooleanField(default=True)
    allow_both_bad = models.BooleanField(default=True)
    strength_scale = models.BooleanField(
        default=True, help_text="Ask for significantly / better / slightly / negligibly."
    )
    rationale_mode = models.CharField(
        max_length=10, choices=RationaleMode.choices, default=RationaleMode.OPTIONAL
    )
    gold_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of items served from the gold set.",
    )
    min_gold_accuracy = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Flag annotators whose gold accuracy is below this.",
    )
    min_consensus_agreement = models.FloatField(
        default=0.6,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Flag annotators who agree with the others' majority less often than this.",
    )
    min_median_seconds = models.FloatField(
        default=3.0,
        validators=[MinValueValidator(0.0)],
        help_text="Flag annotators whose median time per judgment is below this.",
    )
    max_position_p_value = models.FloatField(
        default=0.001,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Flag a left/right preference whose binomial-test p-value is below this.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Archived projects are hidden from the project list and lease no new items.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ProjectMembership", related_name="projects"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate_0_1"
            ),
            models.CheckConstraint(condition=Q(overlap_k__gte=1), name="project_overlap_k_pos"),
        ]

    def __str__(self) -> str:
        return self.name


class ProjectMembership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")
        ]
        indexes = [models.Index(fields=["user", "role"])]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} in {self.project}"


class Prompt(models.Model):
    # indexed by the (project, external_id) unique constraint
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="prompts", db_index=False
    )
    external_id = models.CharField(max_length=255)
    messages = models.JSONField(help_text='Conversation: [{"role", "content"}, …].')
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="prompt_unique_external_id"
            )
        ]
        indexes = [
            # The data browser's keyset pages: a project's prompts, newest first.
            models.Index(fields=["project", "id"], name="prompt_browse"),
        ]

    def __str__(self) -> str:
        return self.external_id


class ResponseSource(models.TextChoices):
    IMPORTED = "imported", "Imported"
    GENERATED = "generated", "Generated by a model artifact"


class Response(models.Model):
    # indexed by the (prompt, content_hash) unique constraint; no database FK (see Comparison)
    prompt = models.ForeignKey(
        Prompt,
        on_delete=models.CASCADE,
        related_name="responses",
        db_index=False,
        db_constraint=False,
    )
    content = models.TextField()
    content_hash = models.BigIntegerField(
        help_text="First 64 bits of the content's SHA-256: one row per distinct answer."
    )
    source = models.CharField(
        max_length=10, choices=ResponseSource.choices, default=ResponseSource.IMPORTED
    )
    model_artifact_id = models.BigIntegerField(
        null=True, blank=True, help_text="The model artifact that generated it, if any."
    )
    round_number = models.PositiveIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "content_hash"], name="response_unique_content"
            )
        ]

    def __str__(self) -> str:
        return f"response {self.pk} to {self.prompt_id}"


class BatchSource(models.TextChoices):
    IMPORT = "import", "Import"
    GENERATION = "generation", "Generation"
    DEMO = "demo", "Demo"


class Batch(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches")
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=12, choices=BatchSource.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    metadata = models.JSONField(default=dict, blank=True)
    comparison_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return self.name


class Comparison(models.Model):
    """Two responses to one prompt, in canonical order (A has the smaller id).

    Comparisons and responses are the bulk tables (a million per import). Their references
    to prompts, responses and batches carry no database FK constraint: per-row FK checks
    were a third of the import's time. They are written only by the publishing service
    (:mod:`annotation.publishing`, for the import and generation alike), which creates the
    referenced rows in the same transaction, and deletes cascade
    through the ORM (tested). Everything that records human work (assignments, judgments)
    keeps real database FKs, with PROTECT on judgments.
    """

    # project and prompt are denormalized copies (of the batch's and the responses' own)
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        related_name="comparisons",
        db_constraint=False,
        db_index=False,  # the queue's partial indexes lead with project
    )
    # batch and response_a are indexed by the (batch, id) index and the pair constraint
    batch = models.ForeignKey(
        Batch,
        on_delete=models.RESTRICT,  # a batch goes only with its project
        related_name="comparisons",
        db_index=False,
        db_constraint=False,
    )
    prompt = models.ForeignKey(
        Prompt, on_delete=models.CASCADE, related_name="comparisons", db_constraint=False
    )
    response_a = models.ForeignKey(
        Response,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    response_b = models.ForeignKey(
        Response, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    gold_choice = models.CharField(
        max_length=8, choices=Choice.choices, blank=True, default="", help_text="Empty: not gold."
    )
    is_gold = models.BooleanField(default=False)
    target_votes = models.PositiveSmallIntegerField(help_text="k when created.")
    judgment_count = models.PositiveSmallIntegerField(default=0)
    lease_count = models.PositiveSmallIntegerField(default=0, help_text="Live leases.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["response_a", "response_b"], name="comparison_unique_pair"
            ),
            models.CheckConstraint(
                condition=Q(response_a__lt=F("response_b")), name="comparison_canonical_order"
            ),
            models.CheckConstraint(
                condition=Q(judgment_count__lte=F("target_votes") - F("lease_count")),
                name="comparison_votes_within_k",
            ),
        ]
        indexes = [
            # The queue's scan: open comparisons of a project, partly judged first.
            models.Index(
                F("project"),
                F("judgment_count").desc(),
                F("id"),
                name="comparison_open_queue",
                condition=Q(is_gold=False)
                & Q(judgment_count__lt=F("target_votes") - F("lease_count")),
            ),
            models.Index(
                fields=["project", "id"], name="comparison_gold", condition=Q(is_gold=True)
            ),
            models.Index(fields=["batch", "id"]),
            # The data browser's keyset pages: a project's comparisons, newest first.
            models.Index(fields=["project", "id"], name="comparison_browse"),
            # ... and a batch's prompts, newest first.
            models.Index(fields=["batch", "prompt"], name="comparison_browse_batch_prompt"),
        ]

    def __str__(self) -> str:
        return f"comparison {self.pk}"


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    """A lease of one comparison to one annotator."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(
        max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE
    )
    swapped = models.BooleanField(help_text="True when B was shown on the left.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "annotator"], name="assignment_once_per_annotator"
            ),
        ]
        indexes = [
            models.Index(
                fields=["annotator", "project", "created_at"],
                name="assignment_live_leases",
                condition=Q(status="active"),
            ),
            models.Index(
                fields=["expires_at"],
                name="assignment_active_expiry",
                condition=Q(status="active"),
            ),
        ]

    def __str__(self) -> str:
        return f"lease {self.pk}: {self.comparison_id} → {self.annotator_id}"


class Judgment(models.Model):
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="judgment")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judgments")
    comparison = models.ForeignKey(Comparison, on_delete=models.PROTECT, related_name="judgments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments"
    )
    choice = models.CharField(max_length=8, choices=Choice.choices)
    strength = models.PositiveSmallIntegerField(choices=Strength.choices, null=True, blank=True)
    rationale = models.TextField(blank=True, default="")
    time_taken_ms = models.PositiveIntegerField(null=True, blank=True)
    swapped = models.BooleanField(help_text="Display order of the lease it answers.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "annotator"], name="judgment_once_per_annotator"
            )
        ]
        indexes = [
            models.Index(fields=["project", "created_at"]),
            models.Index(fields=["annotator", "created_at"]),
            # The data browser's keyset pages: a project's (or an annotator's) judgments by
            # id, and the comparisons an annotator judged by comparison id.
            models.Index(fields=["project", "id"], name="judgment_browse"),
            models.Index(fields=["annotator", "id"], name="judgment_browse_annotator"),
            models.Index(fields=["annotator", "comparison"], name="judgment_browse_annotator_cmp"),
        ]

    def __str__(self) -> str:
        return f"judgment {self.pk}: {self.choice}"


class AnnotatorExclusion(models.Model):
    """An admin's decision to leave an annotator's judgments out of consensus and exports.

    Reversible and audited: a revoke fills the revoke fields; rows are never deleted.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exclusions")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "annotator"],
                condition=Q(revoked_at__isnull=True),
                name="exclusion_one_active_per_annotator",
            )
        ]

    def __str__(self) -> str:
        return f"{self.annotator} excluded from {self.project}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class QualitySnapshot(models.Model):
    """Cached agreement statistics of a project, recomputed by a Celery task."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    computed_at = models.DateTimeField(auto_now_add=True)
    judgment_count = models.PositiveIntegerField()
    last_judgment_id = models.BigIntegerField(default=0)
    seconds = models.FloatField(help_text="How long the recompute took.")
    payload = models.JSONField()

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [models.Index(fields=["project", "-computed_at"])]

    def __str__(self) -> str:
        return f"quality of {self.project_id} at {self.computed_at}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class DatasetExport(models.Model):
    """An immutable, content-hashed snapshot of a project's preferences with the filters that
    made it. Files live under ``ARTIFACT_ROOT/exports/<id>/``; training runs point here."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="exports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True, default="")
    filters = models.JSONField(help_text="The validated export options.")
    counts = models.JSONField(default=dict, help_text="Rows kept and why others were left out.")
    train_rows = models.PositiveIntegerField(default=0)
    test_rows = models.PositiveIntegerField(default=0)
    files = models.JSONField(default=dict, help_text='{"name": {"sha256", "bytes", "rows"}}')
    path = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.project_id} ({self.status})"


class JudgmentRevision(models.Model):
    """An undone judgment, kept as it was: the annotator took it back within the undo window
    (:mod:`annotation.undo`) and the lease it answered became live again.

    The judgment row itself is removed in the same transaction (``Judgment`` stays one current
    row per assignment, which is all that quality, consensus and exports read); this row is
    its trace. ``resubmitted_judgment_id`` is the judgment that replaced it, once the annotator
    judged the item again.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="revisions")
    comparison = models.ForeignKey(Comparison, on_delete=models.PROTECT, related_name="+")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    judgment_id_was = models.BigIntegerField(help_text="Id of the judgment row that was undone.")
    choice = models.CharField(max_length=8, choices=Choice.choices)
    strength = models.PositiveSmallIntegerField(choices=Strength.choices, null=True, blank=True)
    rationale = models.TextField(blank=True, default="")
    time_taken_ms = models.PositiveIntegerField(null=True, blank=True)
    swapped = models.BooleanField()
    judged_at = models.DateTimeField(help_text="When the undone judgment was submitted.")
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    undone_at = models.DateTimeField()
    resubmitted_judgment_id = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Id of the judgment that replaced it (a plain id: that one may be undone too, "
        "and then is the next revision's judgment_id_was).",
    )

    class Meta:
        ordering = ["-undone_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment"],
                condition=Q(resubmitted_judgment_id__isnull=True),
                name="revision_one_open_per_assignment",
            )
        ]

    def __str__(self) -> str:
        return f"revision of judgment {self.judgment_id_was}"


class ImportJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


IMPORT_JOB_FINAL_STATUSES = frozenset(
    {ImportJobStatus.SUCCEEDED, ImportJobStatus.FAILED, ImportJobStatus.CANCELLED}
)


class ImportJob(models.Model):
    """An uploaded import file and its import, run inline (small files) or on a worker. The
    upload lives under ``ARTIFACT_ROOT/imports/<folder>/``, with every bad line found in
    ``bad-lines.jsonl`` beside it. The row is the source of truth: the import and the row's
    final status are committed in one transaction (:mod:`annotation.import_jobs`)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=ImportJobStatus.choices, default=ImportJobStatus.QUEUED
    )
    folder = models.CharField(max_length=200, help_text="Relative to ARTIFACT_ROOT.")
    original_name = models.CharField(max_length=1000, blank=True, default="")
    size_bytes = models.BigIntegerField(default=0)
    options = models.JSONField(
        default=dict, help_text="pairing, pairs_per_prompt, skip_bad_lines, batch_name, seed"
    )
    bytes_read = models.BigIntegerField(default=0)
    lines_read = models.BigIntegerField(default=0)
    records_imported = models.BigIntegerField(default=0)
    prompts_created = models.BigIntegerField(default=0)
    responses_created = models.BigIntegerField(default=0)
    comparisons_created = models.BigIntegerField(default=0)
    comparisons_existing = models.BigIntegerField(default=0)
    bad_line_count = models.BigIntegerField(default=0)
    bad_lines = models.JSONField(
        default=list, blank=True, help_text="The first bad lines: [{line, message}]."
    )
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="importjob_project_idx")]

    def __str__(self) -> str:
        return f"import job {self.pk} of {self.project_id} ({self.status})"

    @property
    def progress(self) -> float:
        """Share of the file read, 0..1 (1 once the job succeeded)."""
        if self.status == ImportJobStatus.SUCCEEDED:
            return 1.0
        if self.size_bytes <= 0:
            return 0.0
        return min(1.0, self.bytes_read / self.size_bytes)


class ProjectInvite(models.Model):
    """A link that lets one person join a project with a role. Only the token's SHA-256 is
    stored; an invite is used once, and can expire or be revoked before that."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invites")
    role = models.CharField(max_length=20, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="invite_project_recent")]

    def __str__(self) -> str:
        return f"invite {self.pk} to {self.project_id} as {self.role}"
