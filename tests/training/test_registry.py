"""The model registry registers complete directories only, by content; tiny models load back
through from_pretrained."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from preflab.errors import InvalidInputError
from training.models import ModelArtifact
from training.registry import artifact_dir, directory_digest, register_artifact, staging_dir

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _artifacts(settings: Any, tmp_path: Path) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"


def make_dir(files: dict[str, bytes]) -> Path:
    folder = staging_dir("test")
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def test_registration_moves_the_directory_and_hashes_it() -> None:
    source = make_dir({"config.json": b"{}", "weights/a.bin": b"\x00" * 10})
    digest, size = directory_digest(source)
    artifact = register_artifact(source=source, name="my model", kind="policy")
    assert not source.exists()
    assert artifact_dir(artifact).is_dir()
    assert artifact.sha256 == digest and artifact.size_bytes == size == 12
    assert artifact.path.startswith("models/policy/my-model-")


def test_same_content_registers_once() -> None:
    first = register_artifact(source=make_dir({"a": b"1"}), name="m", kind="reward")
    second = register_artifact(source=make_dir({"a": b"1"}), name="m", kind="reward")
    assert first.pk == second.pk
    assert ModelArtifact.objects.count() == 1


def test_incomplete_or_bad_registrations_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        register_artifact(source=staging_dir("empty"), name="m", kind="policy")
    with pytest.raises(InvalidInputError):
        register_artifact(source=make_dir({"a": b"1"}), name="m", kind="weights")
    assert ModelArtifact.objects.count() == 0


def test_a_directory_left_by_a_crash_after_the_rename_is_reused() -> None:
    source = make_dir({"a": b"xyz"})
    digest, _ = directory_digest(source)
    crashed = Path(settings.ARTIFACT_ROOT) / "models" / "policy" / f"m-{digest[:12]}"
    crashed.parent.mkdir(parents=True)
    (crashed).mkdir()
    (crashed / "a").write_bytes(b"xyz")
    artifact = register_artifact(source=source, name="m", kind="policy")
    assert artifact_dir(artifact) == crashed and not source.exists()


@pytest.mark.slow
def test_create_tiny_models_registers_loadable_models() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = io.StringIO()
    call_command(
        "create_tiny_models", "--vocab-size", "300", "--hidden", "32", "--layers", "1", stdout=out
    )
    paths = json.loads(out.getvalue())
    root = Path(settings.ARTIFACT_ROOT)
    tokenizer = AutoTokenizer.from_pretrained(root / paths["tokenizer"])
    model = AutoModelForCausalLM.from_pretrained(root / paths["policy"])
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat.endswith("<|assistant|>")
    ids = tokenizer(chat, return_tensors="pt").input_ids
    assert model(ids).logits.shape[-1] == len(tokenizer)
    policy = ModelArtifact.objects.get(kind="policy")
    assert policy.parent is not None and policy.parent.kind == "tokenizer"
