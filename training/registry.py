"""The model registry: an artifact directory is registered only once it is complete.

Writers produce a directory anywhere (usually a temporary one under the artifact root); the
registry hashes it, renames it into ``ARTIFACT_ROOT/models/<kind>/<name>-<short sha>`` in one
``rename`` (atomic on one filesystem) and then records the row. A crash before the rename
leaves no registered artifact; a crash after it leaves a directory without a row, which a
second registration of the same content reuses.

A model directory an ML engineer already has is registered in place instead (no copy, an
absolute path): see ``training.model_registration``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from preflab.errors import InvalidInputError
from training.models import ArtifactKind, ModelArtifact


def directory_digest(folder: Path) -> tuple[str, int]:
    """sha256 over every file's relative path and bytes (sorted), and the total size."""
    sha = hashlib.sha256()
    size = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        sha.update(rel.encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                sha.update(chunk)
                size += len(chunk)
    return sha.hexdigest(), size


def staging_dir(prefix: str = "artifact") -> Path:
    """A fresh temporary directory on the artifact filesystem (so the final rename is atomic)."""
    root = Path(settings.ARTIFACT_ROOT) / ".staging"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=root))


@transaction.atomic
def register_artifact(
    *,
    source: Path,
    name: str,
    kind: str,
    parent: ModelArtifact | None = None,
    project: Any = None,
    dataset_export: Any = None,
    metrics: dict[str, Any] | None = None,
    created_by: Any = None,
) -> ModelArtifact:
    """Move a complete artifact directory into the registry and record it."""
    if kind not in ArtifactKind.values:
        raise InvalidInputError(f"Unknown artifact kind {kind!r}.")
    if not source.is_dir() or not any(source.iterdir()):
        raise InvalidInputError(f"{source} is not a non-empty directory.")
    digest, size = directory_digest(source)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:80] or "artifact"
    relative = Path("models") / kind / f"{slug}-{digest[:12]}"
    target = Path(settings.ARTIFACT_ROOT) / relative
    existing = ModelArtifact.objects.filter(path=str(relative)).first()
    if existing is not None:
        shutil.rmtree(source, ignore_errors=True)
        return existing
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # left by a crash after the rename: same content, reuse it
        shutil.rmtree(source, ignore_errors=True)
    else:
        source.rename(target)
    return ModelArtifact.objects.create(
        name=name,
        kind=kind,
        path=str(relative),
        parent=parent,
        project=project,
        dataset_export=dataset_export,
        metrics=metrics or {},
        size_bytes=size,
        sha256=digest,
        created_by=created_by,
    )


def artifact_dir(artifact: ModelArtifact) -> Path:
    """The artifact's directory: under ``ARTIFACT_ROOT`` for Preflab's own artifacts (a relative
    path), or where it was registered in place (an absolute path). Every reader of an
    artifact's files goes through here."""
    path = Path(artifact.path)
    return path if path.is_absolute() else Path(settings.ARTIFACT_ROOT) / path
