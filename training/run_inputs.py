"""Checks of what a run is started from: configs, dataset exports, artifacts and prompts,
each failure a typed error naming the field (the API turns them into 4xx answers)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from annotation.models import DatasetExport, ExportStatus, Project, Prompt
from preflab.db_chunks import chunked
from preflab.errors import ConflictError, InvalidInputError, NotFoundError
from training.ml.config import ConfigError
from training.models import ArtifactKind, ModelArtifact

T = TypeVar("T")
MAX_RUN_PROMPTS = 100_000


class InvalidRunConfig(InvalidInputError):
    code = "invalid_config"


def parsed_config(parse: Callable[[dict[str, Any]], T], config: Any) -> T:
    if not isinstance(config, dict):
        raise InvalidRunConfig("config must be a JSON object.", extra={"fields": {}})
    try:
        return parse(config)
    except ConfigError as exc:
        raise InvalidRunConfig(str(exc), extra={"fields": exc.fields}) from None


def succeeded_export(project: Project, export_id: int | None) -> DatasetExport:
    if export_id is None:
        raise InvalidRunConfig(
            "dataset_export is required for this kind of run.",
            extra={"fields": {"dataset_export": "required"}},
        )
    # another project's export answers exactly as a missing one: ids reveal nothing
    export = DatasetExport.objects.filter(pk=export_id, project=project).first()
    if export is None:
        raise NotFoundError("No such dataset export.")
    if export.status != ExportStatus.SUCCEEDED:
        raise ConflictError("That dataset export has not succeeded.")
    return export


def project_artifact(
    project: Project, artifact_id: int | None, *, field: str, kinds: Iterable[str]
) -> ModelArtifact:
    """An artifact of one of ``kinds`` that belongs to the project or is shared (no project).
    Another project's artifact is answered exactly as a missing one: ids reveal nothing."""
    allowed = tuple(kinds)
    names = " or ".join(ArtifactKind(k).label.lower() for k in allowed)
    artifact = ModelArtifact.objects.filter(pk=artifact_id).first() if artifact_id else None
    if (
        artifact is None
        or artifact.kind not in allowed
        or artifact.project_id not in (None, project.id)
    ):
        raise InvalidRunConfig(
            f"{field} must be a {names} artifact.",
            extra={"fields": {field: f"not a {names} artifact"}},
        )
    return artifact


def run_prompts(project: Project, prompt_ids: Any) -> list[int]:
    """The prompt ids a run uses: the given ones (all of this project), or every prompt."""
    if prompt_ids in (None, []):
        ids = list(
            Prompt.objects.filter(project=project)
            .order_by("id")
            .values_list("id", flat=True)[:MAX_RUN_PROMPTS]
        )
        if not ids:
            raise InvalidRunConfig(
                "The project has no prompts.", extra={"fields": {"prompt_ids": "no prompts"}}
            )
        return ids
    if not isinstance(prompt_ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in prompt_ids
    ):
        raise InvalidRunConfig(
            "prompt_ids must be a list of prompt ids.",
            extra={"fields": {"prompt_ids": "not a list of integers"}},
        )
    wanted = sorted(set(prompt_ids))
    if len(wanted) > MAX_RUN_PROMPTS:
        raise InvalidRunConfig(
            f"At most {MAX_RUN_PROMPTS} prompts per run.",
            extra={"fields": {"prompt_ids": "too many"}},
        )
    found: set[int] = set()
    for chunk in chunked(wanted):
        found.update(
            Prompt.objects.filter(project=project, pk__in=chunk).values_list("id", flat=True)
        )
    missing = [i for i in wanted if i not in found]
    if missing:
        raise InvalidRunConfig(
            f"{len(missing)} prompt id(s) are not prompts of this project (first: {missing[0]}).",
            extra={"fields": {"prompt_ids": "unknown prompt ids"}, "missing": missing[:20]},
        )
    return wanted


def launch_settings(launcher: Any, options: Any, *, kind: str) -> dict[str, Any]:
    """The run's ``launcher`` and ``launcher_options`` fields, checked: a registered launcher
    (``PREFLAB_DEFAULT_LAUNCHER`` when None) that runs steps of ``kind``, and options that
    launcher accepts."""
    from django.conf import settings

    from training.launch.base import get_launcher, launcher_names

    name = settings.PREFLAB_DEFAULT_LAUNCHER if launcher in (None, "") else launcher
    names = launcher_names()
    if not isinstance(name, str) or name not in names:
        raise InvalidRunConfig(
            f"launcher must be one of {', '.join(names)}.",
            extra={"fields": {"launcher": "unknown launcher"}},
        )
    opts = {} if options is None else options
    if not isinstance(opts, dict):
        raise InvalidRunConfig(
            "launcher_options must be a JSON object.",
            extra={"fields": {"launcher_options": "not an object"}},
        )
    if name == "inprocess":
        if opts:
            raise InvalidRunConfig(
                "The inprocess launcher takes no options.",
                extra={"fields": {"launcher_options": "must be empty for inprocess"}},
            )
        return {"launcher": name, "launcher_options": {}}
    try:
        made = get_launcher(name, opts)
    except (ValueError, TypeError) as exc:
        raise InvalidRunConfig(
            f"launcher_options: {exc}", extra={"fields": {"launcher_options": str(exc)}}
        ) from None
    kinds = getattr(made, "kinds", None)
    if kinds is not None and kind not in kinds:
        raise InvalidRunConfig(
            f"The {name} launcher runs {', '.join(kinds)} steps only, not {kind}.",
            extra={"fields": {"launcher": f"not for {kind} runs"}},
        )
    return {"launcher": name, "launcher_options": opts}
