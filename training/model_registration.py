"""Bring your own model: register an existing Hugging Face directory (a policy, a reward model or
a Preflab reward ensemble, a tokenizer) as an artifact, in place.

Two stages, one service for the API and the ``register_model`` command:

1. :func:`request_registration` (in the request, cheap): the path must be absolute, exist, be a
   directory whose real path lies inside one of ``PREFLAB_MODEL_ROOTS`` (default:
   ``ARTIFACT_ROOT``), and hold no symlink that leads outside the roots. It records a pending
   :class:`~training.models.ModelRegistration` and queues the validation task.
2. :func:`validate_registration` (in the task, or synchronously in the command): checks the
   location again (the disk may have changed), loads the config and the tokenizer with
   ``trust_remote_code=False`` and only local files, reads parameter count and dtype from the
   safetensors headers (never the weights), hashes the directory, and creates the artifact
   pointing at the directory by its absolute path. Any refusal marks the registration failed
   with the reason and creates no artifact.

A reward model must be a sequence classifier with exactly one label (``num_labels == 1``, an
``…ForSequenceClassification`` architecture): a plain causal LM is refused as a reward model
(register it as a policy and train a reward model from it with a reward run).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any, TypedDict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from preflab.errors import InvalidInputError, NotFoundError
from training.ml.scoring import ENSEMBLE_MANIFEST
from training.models import (
    ArtifactKind,
    ArtifactOrigin,
    ModelArtifact,
    ModelRegistration,
    RegistrationStatus,
)
from training.registry import directory_digest

logger = logging.getLogger(__name__)

REGISTRABLE_KINDS = (ArtifactKind.POLICY, ArtifactKind.REWARD, ArtifactKind.TOKENIZER)
MAX_ENTRIES = 100_000  # files and folders the request walks to check symlinks
SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


class ModelInfo(TypedDict):
    """What validation records of a registered directory (``ModelArtifact.model_info`` and
    ``ModelRegistration.info``)."""

    kind: str
    architecture: str | None  # config.architectures[0]; None for a tokenizer
    model_type: str | None  # config.model_type; None for a tokenizer
    parameter_count: int | None  # from the safetensors headers (all members of an ensemble)
    dtype: str | None  # the dtype holding most parameters, else the config's torch_dtype
    dtype_source: str  # "safetensors", "config" or "none"
    weights_format: str | None  # "safetensors" or "pytorch"; None for a tokenizer
    num_labels: int | None  # reward models: 1
    ensemble_members: list[str] | None  # subdirectories of a Preflab reward ensemble
    vocab_size: int  # tokens of the tokenizer, added tokens included
    config_vocab_size: int | None  # rows of the model's embedding
    has_chat_template: bool
    has_pad_token: bool  # the tokenizer's own (training pads with EOS when it has none)
    eos_token: str | None
    sha256: str  # training.registry.directory_digest
    size_bytes: int


class RegistrationRejected(Exception):
    """The directory cannot be registered; the message is the reason shown to the user."""


class LocationError(InvalidInputError):
    code = "invalid_path"


# --- where the directory is (cheap; in the request and again in the task) ---------------------


def model_roots() -> list[Path]:
    """The directories models may be registered from (real paths)."""
    roots = list(settings.PREFLAB_MODEL_ROOTS) or [Path(settings.ARTIFACT_ROOT)]
    return [Path(root).resolve() for root in roots]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _location_error(message: str, reason: str) -> LocationError:
    return LocationError(message, extra={"fields": {"path": reason}})


def checked_location(raw: str) -> Path:
    """The real path of ``raw`` after every location rule, or a :class:`LocationError`
    naming the rule it breaks."""
    if not isinstance(raw, str) or not raw.strip() or "\0" in raw:
        raise _location_error("path must be an absolute directory path.", "required")
    path = Path(raw)
    if not path.is_absolute():
        raise _location_error(f"path must be absolute (got {raw!r}).", "not absolute")
    roots = model_roots()
    allowed = ", ".join(str(r) for r in roots)
    try:
        if not path.exists():
            raise _location_error(f"{raw} does not exist.", "does not exist")
        if not path.is_dir():
            raise _location_error(f"{raw} is not a directory.", "not a directory")
        real = path.resolve(strict=True)
    except OSError as exc:
        raise _location_error(f"{raw} cannot be read: {exc.strerror}.", "unreadable") from None
    except RuntimeError:  # a symlink loop (Python 3.11 resolves with RuntimeError)
        raise _location_error(f"{raw} is a symlink loop.", "symlink loop") from None
    if not _inside(real, roots):
        raise _location_error(
            f"{raw} (real path {real}) is outside the allowed model roots ({allowed}); "
            "an administrator can allow more roots with PREFLAB_MODEL_ROOTS.",
            "outside the model roots",
        )
    _check_symlinks(real, roots, allowed)
    return real


def _check_symlinks(folder: Path, roots: list[Path], allowed: str) -> None:
    """No entry of ``folder`` (followed through symlinked folders) may resolve outside the
    roots; unreadable folders are refused rather than skipped."""

    def unreadable(exc: OSError) -> None:
        raise _location_error(
            f"{exc.filename} cannot be read: {exc.strerror}.", "unreadable"
        ) from None

    seen: set[Path] = set()
    entries = 0
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True, onerror=unreadable):
        here = Path(dirpath)
        real_here = _resolved(here, folder)
        if real_here in seen:  # a symlink cycle: every entry below was checked already
            dirnames.clear()
            continue
        seen.add(real_here)
        for name in [*dirnames, *filenames]:
            entries += 1
            if entries > MAX_ENTRIES:
                raise _location_error(
                    f"{folder} holds more than {MAX_ENTRIES} files and folders; "
                    "a model directory is expected to hold a few.",
                    "too many files",
                )
            entry = here / name
            if entry.is_symlink():
                target = _resolved(entry, folder)
                if not _inside(target, roots):
                    raise _location_error(
                        f"{_shown(entry, folder)} is a symlink to {target}, outside the allowed "
                        f"model roots ({allowed}).",
                        "symlink outside the model roots",
                    )


def _shown(entry: Path, folder: Path) -> str:
    return str(entry.relative_to(folder)) if entry.is_relative_to(folder) else str(entry)


def _resolved(entry: Path, folder: Path) -> Path:
    """``entry.resolve()``, a symlink loop being a refusal rather than an error."""
    try:
        return entry.resolve()
    except (OSError, RuntimeError):
        raise _location_error(
            f"{_shown(entry, folder)} is a symlink loop.", "symlink loop"
        ) from None


# --- what the directory holds (in the task) --------------------------------------------------


def _load_config(folder: Path) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            str(folder), trust_remote_code=False, local_files_only=True
        )
    except Exception as exc:
        raise RegistrationRejected(
            f"config.json does not load: {type(exc).__name__}: {exc}"
        ) from None


def _load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(folder), trust_remote_code=False, local_files_only=True
        )
    except Exception as exc:
        raise RegistrationRejected(
            f"the tokenizer does not load: {type(exc).__name__}: {exc}"
        ) from None
    if isinstance(tokenizer, bool) or not hasattr(tokenizer, "convert_tokens_to_ids"):
        raise RegistrationRejected("the tokenizer does not load: no tokenizer files found.")
    return tokenizer


def _architectures(config: Any) -> list[str]:
    return list(getattr(config, "architectures", None) or [])


def _check_policy(config: Any) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    architectures = _architectures(config)
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        raise RegistrationRejected(
            f"the config describes a sequence classifier ({', '.join(architectures)}), "
            "not a causal language model: register it with kind reward."
        )
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise RegistrationRejected(
            f"model_type {config.model_type!r} is not a causal language model transformers "
            "can load without remote code."
        )


def _check_reward(config: Any, where: str) -> None:
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    )

    architectures = _architectures(config)
    if config.model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        raise RegistrationRejected(
            f"{where}model_type {config.model_type!r} has no sequence classifier transformers "
            "can load without remote code."
        )
    classifier = any(a.endswith("ForSequenceClassification") for a in architectures)
    if not classifier or config.num_labels != 1:
        raise RegistrationRejected(
            f"{where}a reward model must be a sequence classifier with one label, but the "
            f"config has architectures {architectures or 'unset'} and num_labels "
            f"{config.num_labels}. To start a reward model from a causal LM, register it as a "
            "policy and train a reward model from it with a reward run."
        )


def _ensemble_members(folder: Path) -> list[str]:
    """The member subdirectories a Preflab ensemble manifest lists (each inside ``folder``)."""
    try:
        manifest = json.loads((folder / ENSEMBLE_MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise RegistrationRejected(f"{ENSEMBLE_MANIFEST} does not load: {exc}") from None
    members = manifest.get("members") if isinstance(manifest, dict) else None
    if not isinstance(members, list) or not members:
        raise RegistrationRejected(f"{ENSEMBLE_MANIFEST} must list its members (a non-empty list).")
    for member in members:
        if not isinstance(member, str) or not member:
            raise RegistrationRejected(f"{ENSEMBLE_MANIFEST}: members must be folder names.")
        target = (folder / member).resolve()
        if Path(member).is_absolute() or not target.is_relative_to(folder):
            raise RegistrationRejected(
                f"{ENSEMBLE_MANIFEST}: member {member!r} is not a subdirectory of the ensemble."
            )
        if not target.is_dir():
            raise RegistrationRejected(
                f"{ENSEMBLE_MANIFEST}: member {member!r} is not a directory."
            )
    return [str(m) for m in members]


def _weights(folder: Path, config: Any, kind: str) -> tuple[int, str | None, str, str]:
    """(parameter count, dtype, dtype source, weights format) of one model directory, read
    from the safetensors headers; a ``pytorch_model*.bin`` checkpoint is counted on the meta
    device from the config (nothing is loaded either way)."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if files:
        per_dtype: Counter[str] = Counter()
        for file in files:
            try:
                with safe_open(str(file), framework="pt") as handle:
                    for key in handle.keys():
                        tensor = handle.get_slice(key)
                        count = 1
                        for dim in tensor.get_shape():
                            count *= int(dim)
                        per_dtype[tensor.get_dtype()] += count
            except Exception as exc:
                raise RegistrationRejected(
                    f"{file.name} is not a readable safetensors file: {exc}"
                ) from None
        dominant = per_dtype.most_common(1)[0][0] if per_dtype else None
        dtype = SAFETENSORS_DTYPES.get(dominant, dominant) if dominant else None
        return sum(per_dtype.values()), dtype, "safetensors", "safetensors"
    if not any(folder.glob("pytorch_model*.bin")):
        raise RegistrationRejected(
            f"{folder.name}/ holds no model weights (*.safetensors or pytorch_model*.bin)."
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    auto = (
        AutoModelForCausalLM if kind == ArtifactKind.POLICY else AutoModelForSequenceClassification
    )
    try:
        with torch.device("meta"):
            model = auto.from_config(config, trust_remote_code=False)
    except Exception as exc:
        raise RegistrationRejected(
            f"the model cannot be built from its config: {type(exc).__name__}: {exc}"
        ) from None
    count = sum(p.numel() for p in model.parameters())
    dtype = _config_dtype(config)
    return count, dtype, "config" if dtype else "none", "pytorch"


def _config_dtype(config: Any) -> str | None:
    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if value is None:
        return None
    return str(value).removeprefix("torch.")


def _check_tokenizer_fits(tokenizer: Any, config: Any) -> None:
    rows = getattr(config, "vocab_size", None)
    if isinstance(rows, int) and len(tokenizer) > rows:
        raise RegistrationRejected(
            f"the tokenizer has {len(tokenizer)} tokens but the model's embedding has only "
            f"{rows} rows (config vocab_size): they do not belong together."
        )


def inspect_model_dir(folder: Path, kind: str) -> ModelInfo:
    """Validate a model directory of ``kind`` and record what it holds, without loading its
    weights; :class:`RegistrationRejected` with the reason when it cannot be used."""
    if kind not in REGISTRABLE_KINDS:
        raise RegistrationRejected(f"kind must be one of {', '.join(REGISTRABLE_KINDS)}.")
    config: Any = None
    members: list[str] | None = None
    parameter_count: int | None = None
    dtype: str | None = None
    dtype_source, weights_format = "none", None
    if kind == ArtifactKind.TOKENIZER:
        tokenizer = _load_tokenizer(folder)
    elif kind == ArtifactKind.POLICY:
        config = _load_config(folder)
        _check_policy(config)
        tokenizer = _load_tokenizer(folder)
        parameter_count, dtype, dtype_source, weights_format = _weights(folder, config, kind)
    else:
        if (folder / ENSEMBLE_MANIFEST).exists():
            members = _ensemble_members(folder)
            dirs = [folder / m for m in members]
        else:
            dirs = [folder]
        parameter_count = 0
        for d in dirs:
            where = f"ensemble member {d.name}: " if members is not None else ""
            member_config = _load_config(d)
            _check_reward(member_config, where)
            count, dtype, dtype_source, weights_format = _weights(d, member_config, kind)
            parameter_count += count
            config = config or member_config
        tokenizer = _load_tokenizer(dirs[0])  # as the scorer loads it
    if tokenizer.pad_token is None and tokenizer.eos_token is None:
        raise RegistrationRejected(
            "the tokenizer has neither a pad token nor an EOS token; training needs one."
        )
    if config is not None:
        _check_tokenizer_fits(tokenizer, config)
        if dtype is None:
            dtype = _config_dtype(config)
            dtype_source = "config" if dtype else "none"
    digest, size = directory_digest(folder)
    architectures = _architectures(config) if config is not None else []
    return ModelInfo(
        kind=kind,
        architecture=architectures[0] if architectures else None,
        model_type=getattr(config, "model_type", None) if config is not None else None,
        parameter_count=parameter_count,
        dtype=dtype,
        dtype_source=dtype_source,
        weights_format=weights_format,
        num_labels=config.num_labels if kind == ArtifactKind.REWARD else None,
        ensemble_members=members,
        vocab_size=len(tokenizer),
        config_vocab_size=getattr(config, "vocab_size", None) if config is not None else None,
        has_chat_template=bool(getattr(tokenizer, "chat_template", None)),
        has_pad_token=tokenizer.pad_token is not None,
        eos_token=tokenizer.eos_token,
        sha256=digest,
        size_bytes=size,
    )


# --- the services ------------------------------------------------------------------------------


@transaction.atomic
def request_registration(
    *,
    project: Any,
    path: str,
    kind: str,
    name: str = "",
    user: Any = None,
    enqueue: bool = True,
) -> ModelRegistration:
    """Check where the directory is and record a pending registration; with ``enqueue`` the
    validation task is sent once this commits."""
    if kind not in REGISTRABLE_KINDS:
        raise InvalidInputError(
            f"kind must be one of {', '.join(REGISTRABLE_KINDS)}.",
            extra={"fields": {"kind": "invalid"}},
        )
    real = checked_location(path)
    if len(str(real)) > ModelArtifact._meta.get_field("path").max_length:  # type: ignore[operator]
        raise _location_error("path is too long.", "too long")
    registration = ModelRegistration.objects.create(
        project=project,
        path=str(real),
        kind=kind,
        name=(name or "").strip()[:200] or real.name,
        created_by=user,
    )
    if enqueue:
        from training.tasks import validate_model_registration

        transaction.on_commit(partial(validate_model_registration.delay, registration.pk))
    return registration


def validate_registration(registration_id: int) -> ModelRegistration:
    """Validate a pending registration and create (or find) its artifact; a registration that
    is no longer pending is returned as it is (a re-delivered task does nothing)."""
    registration = ModelRegistration.objects.filter(pk=registration_id).first()
    if registration is None:
        raise NotFoundError(f"No model registration {registration_id}.")
    if registration.status != RegistrationStatus.PENDING:
        return registration
    try:
        folder = checked_location(registration.path)
        info = inspect_model_dir(folder, registration.kind)
    except LocationError as exc:
        return _finish_failed(registration_id, exc.message)
    except RegistrationRejected as exc:
        return _finish_failed(registration_id, str(exc))
    except Exception as exc:
        logger.exception("validating model registration %s", registration_id)
        return _finish_failed(registration_id, f"validation failed: {type(exc).__name__}: {exc}")
    return _finish_registered(registration_id, folder, info)


@transaction.atomic
def _finish_failed(registration_id: int, reason: str) -> ModelRegistration:
    registration = ModelRegistration.objects.select_for_update().get(pk=registration_id)
    if registration.status == RegistrationStatus.PENDING:
        registration.status = RegistrationStatus.FAILED
        registration.error = reason[:4000]
        registration.finished_at = timezone.now()
        registration.save(update_fields=["status", "error", "finished_at"])
    return registration


def _stored_paths(folder: Path) -> list[str]:
    """The ``ModelArtifact.path`` values the directory may already be recorded under."""
    paths = [str(folder)]
    root = Path(settings.ARTIFACT_ROOT).resolve()
    if folder.is_relative_to(root):
        paths.append(str(folder.relative_to(root)))
    return paths


def _finish_registered(registration_id: int, folder: Path, info: ModelInfo) -> ModelRegistration:
    with transaction.atomic():
        registration = ModelRegistration.objects.select_for_update().get(pk=registration_id)
        if registration.status != RegistrationStatus.PENDING:
            return registration
        existing = ModelArtifact.objects.filter(path__in=_stored_paths(folder)).first()
        if existing is None:
            try:
                with transaction.atomic():
                    existing = ModelArtifact.objects.create(
                        name=registration.name,
                        kind=registration.kind,
                        path=str(folder),
                        origin=ArtifactOrigin.REGISTERED,
                        project=registration.project,
                        model_info=dict(info),
                        size_bytes=info["size_bytes"],
                        sha256=info["sha256"],
                        created_by=registration.created_by,
                    )
            except IntegrityError:  # registered by a concurrent validation a moment ago
                existing = ModelArtifact.objects.filter(path__in=_stored_paths(folder)).first()
                if existing is None:
                    raise
        reason = _reuse_refusal(existing, registration, info)
        if reason is None:
            registration.status = RegistrationStatus.REGISTERED
            registration.artifact = existing
        else:
            registration.status = RegistrationStatus.FAILED
            registration.error = reason
        registration.info = dict(info)
        registration.finished_at = timezone.now()
        registration.save(update_fields=["status", "artifact", "error", "info", "finished_at"])
        return registration


def _reuse_refusal(
    artifact: ModelArtifact, registration: ModelRegistration, info: ModelInfo
) -> str | None:
    """None when the directory's existing artifact is this registration's (same content, kind
    and project); else why it cannot be registered again."""
    if artifact.sha256 != info["sha256"]:
        return (
            f"this directory is already registered as artifact #{artifact.pk} with other "
            "content; a registered model is used in place and must not change: put the new "
            "version in a new directory."
            if artifact.project_id in (None, registration.project_id)
            else "this directory is already registered in another project with other content."
        )
    if artifact.project_id not in (None, registration.project_id):
        return "this directory is already registered in another project."
    if artifact.kind != registration.kind:
        return f"this directory is already registered as a {artifact.kind} (#{artifact.pk})."
    return None
