"""Bring your own model: registering an existing directory in place — the request's location
checks (400s), the validation task (recorded info, refusals with the reason and no artifact,
no duplicates), permissions, the management command, and runs and rounds started from a
registered artifact."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from annotation.importing import ImportOptions, import_comparisons
from annotation.models import Project
from annotation.roles import Role
from annotation.services import set_membership
from preflab.celery import app as celery_app
from tests.annotation.factories import jsonl
from training.ml.scoring import ENSEMBLE_MANIFEST
from training.ml.synthetic import PolicyShape, build_synthetic_policy, random_answer
from training.ml.tiny import build_tokenizer
from training.model_registration import inspect_model_dir, validate_registration
from training.models import (
    ArtifactOrigin,
    ModelArtifact,
    ModelRegistration,
    RegistrationStatus,
    RunStatus,
)
from training.registry import artifact_dir, directory_digest, register_artifact, staging_dir

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny models built once under a model root: a tokenizer, a policy, a reward model on
    it, and a two-member Preflab reward ensemble."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    root = tmp_path_factory.mktemp("model-root")
    tokenizer = build_tokenizer(
        [random_answer(__import__("random").Random(i)) for i in range(50)],
        root / "tokenizer",
        vocab_size=280,
    )
    policy = build_synthetic_policy(
        root / "policy", shape=PolicyShape(hidden=32, layers=1, heads=2, pretrain_steps=20)
    )
    reward = AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1)
    reward.save_pretrained(root / "reward")
    AutoTokenizer.from_pretrained(policy).save_pretrained(root / "reward")
    ensemble = root / "ensemble"
    for i in range(2):
        shutil.copytree(root / "reward", ensemble / f"member-{i}")
    (ensemble / ENSEMBLE_MANIFEST).write_text(
        json.dumps({"members": ["member-0", "member-1"], "lambda": 1.0})
    )
    return {
        "root": root,
        "tokenizer": tokenizer,
        "policy": policy,
        "reward": root / "reward",
        "ensemble": ensemble,
    }


@pytest.fixture(autouse=True)
def _roots(settings: Any, tmp_path: Path, model_files: dict[str, Path]) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    settings.ARTIFACT_ROOT.mkdir()
    settings.PREFLAB_MODEL_ROOTS = [model_files["root"]]


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """``delay`` runs the real task in this process (as a worker would, with its result)."""
    conf = celery_app.conf
    saved = (conf.task_always_eager, conf.task_eager_propagates)
    conf.task_always_eager, conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        conf.task_always_eager, conf.task_eager_propagates = saved


def copy_into_root(model_files: dict[str, Path], source: str, name: str) -> Path:
    """A private copy of a built model under the model root (for tests that change it)."""
    target = model_files["root"] / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(model_files[source], target)
    return target


def register(
    client: Client,
    project: Project,
    path: Path | str,
    kind: str,
    captured: Any,
    name: str = "",
) -> Any:
    """POST a registration; run the validation task it enqueues on commit."""
    with captured(execute=True) as callbacks:
        response = client.post(
            f"/api/projects/{project.id}/artifacts/",
            {"path": str(path), "kind": kind, "name": name},
            content_type="application/json",
        )
    if response.status_code == 202:
        assert len(callbacks) == 1  # the validation task, sent once the request committed
    return response


def registration_status(client: Client, project: Project, registration_id: int) -> Any:
    return client.get(f"/api/projects/{project.id}/artifact-registrations/{registration_id}/")


# --- success ------------------------------------------------------------------------------------


def test_a_policy_registers_in_place_with_its_recorded_info(
    ml_engineer: Any,
    project: Project,
    client: Client,
    model_files: dict[str, Path],
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from transformers import AutoModelForCausalLM

    client.force_login(ml_engineer)
    policy = model_files["policy"]
    before = sorted(p.name for p in policy.iterdir())
    response = register(
        client, project, policy, "policy", django_capture_on_commit_callbacks, name="sft-v1"
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending" and body["path"] == str(policy.resolve())

    done = registration_status(client, project, body["id"]).json()
    assert done["status"] == "registered", done["error"]
    artifact = ModelArtifact.objects.get(pk=done["artifact_id"])
    assert artifact.origin == ArtifactOrigin.REGISTERED
    assert artifact.kind == "policy" and artifact.name == "sft-v1"
    assert artifact.project_id == project.id and artifact.created_by_id == ml_engineer.id
    assert artifact_dir(artifact) == policy.resolve()  # referenced in place, not copied
    assert sorted(p.name for p in policy.iterdir()) == before

    model = AutoModelForCausalLM.from_pretrained(policy)
    info = artifact.model_info
    assert info["parameter_count"] == sum(p.numel() for p in model.parameters())
    assert info["dtype"] == "float32" and info["dtype_source"] == "safetensors"
    assert info["architecture"] == "LlamaForCausalLM" and info["model_type"] == "llama"
    assert info["vocab_size"] == model.config.vocab_size == info["config_vocab_size"]
    assert info["has_chat_template"] is True and info["has_pad_token"] is True
    assert info["eos_token"] == "<eos>"
    digest, size = directory_digest(policy)
    assert (info["sha256"], info["size_bytes"]) == (digest, size)
    assert (artifact.sha256, artifact.size_bytes) == (digest, size)
    assert done["info"] == info

    listed = client.get(f"/api/projects/{project.id}/artifacts/").json()["results"]
    row = next(a for a in listed if a["id"] == artifact.id)
    assert row["origin"] == "registered" and row["model_info"]["parameter_count"] > 0
    assert row["path"] == str(policy.resolve())


def test_a_reward_model_and_a_tokenizer_register(
    ml_engineer: Any,
    project: Project,
    client: Client,
    model_files: dict[str, Path],
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    client.force_login(ml_engineer)
    reward = register(
        client, project, model_files["reward"], "reward", django_capture_on_commit_callbacks
    ).json()
    reward = registration_status(client, project, reward["id"]).json()
    assert reward["status"] == "registered", reward["error"]
    model = AutoModelForSequenceClassification.from_pretrained(model_files["reward"])
    assert reward["info"]["parameter_count"] == sum(p.numel() for p in model.parameters())
    assert reward["info"]["num_labels"] == 1
    assert reward["info"]["architecture"] == "LlamaForSequenceClassification"
    assert reward["name"] == "reward"  # the directory's name by default

    tokenizer = register(
        client, project, model_files["tokenizer"], "tokenizer", django_capture_on_commit_callbacks
    ).json()
    tokenizer = registration_status(client, project, tokenizer["id"]).json()
    assert tokenizer["status"] == "registered", tokenizer["error"]
    loaded = AutoTokenizer.from_pretrained(model_files["tokenizer"])
    info = tokenizer["info"]
    assert info["vocab_size"] == len(loaded)
    assert info["architecture"] is None and info["parameter_count"] is None
    assert info["has_chat_template"] is True and info["eos_token"] == "<eos>"
    kinds = set(ModelArtifact.objects.filter(origin="registered").values_list("kind", flat=True))
    assert kinds == {"reward", "tokenizer"}


def test_a_reward_ensemble_registers_with_its_members_counted(
    model_files: dict[str, Path],
) -> None:
    from transformers import AutoModelForSequenceClassification

    info = inspect_model_dir(model_files["ensemble"], "reward")
    member = AutoModelForSequenceClassification.from_pretrained(
        model_files["ensemble"] / "member-0"
    )
    assert info["ensemble_members"] == ["member-0", "member-1"]
    assert info["parameter_count"] == 2 * sum(p.numel() for p in member.parameters())
    assert info["num_labels"] == 1


def test_a_pytorch_checkpoint_is_counted_on_the_meta_device_from_its_config(
    model_files: dict[str, Path],
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    path = copy_into_root(model_files, "policy", "pytorch-checkpoint")
    model = AutoModelForCausalLM.from_pretrained(path)
    (path / "model.safetensors").unlink()
    torch.save(model.state_dict(), path / "pytorch_model.bin")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(config | {"dtype": "bfloat16"}))
    info = inspect_model_dir(path, "policy")
    assert info["weights_format"] == "pytorch"
    assert info["parameter_count"] == sum(p.numel() for p in model.parameters())
    assert (info["dtype"], info["dtype_source"]) == ("bfloat16", "config")


def test_the_ensemble_registers_through_the_task_and_its_scorer_loads_it(
    ml_engineer: Any,
    project: Project,
    client: Client,
    model_files: dict[str, Path],
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from training.ml.scoring import RewardScorer

    client.force_login(ml_engineer)
    body = register(
        client, project, model_files["ensemble"], "reward", django_capture_on_commit_callbacks
    ).json()
    done = registration_status(client, project, body["id"]).json()
    assert done["status"] == "registered", done["error"]
    artifact = ModelArtifact.objects.get(pk=done["artifact_id"])
    assert RewardScorer(artifact_dir(artifact), device="cpu").size == 2


def test_registering_the_same_directory_again_creates_no_duplicate(
    ml_engineer: Any,
    project: Project,
    client: Client,
    model_files: dict[str, Path],
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.force_login(ml_engineer)
    path = copy_into_root(model_files, "policy", "policy-again")
    first = register(client, project, path, "policy", django_capture_on_commit_callbacks).json()
    second = register(client, project, path, "policy", django_capture_on_commit_callbacks).json()
    first = registration_status(client, project, first["id"]).json()
    second = registration_status(client, project, second["id"]).json()
    assert first["status"] == second["status"] == "registered"
    assert first["artifact_id"] == second["artifact_id"]
    assert ModelArtifact.objects.filter(origin="registered").count() == 1

    # the same directory with other content: refused, the artifact keeps its digest
    (path / "NOTES.md").write_text("fine-tuned further\n")
    changed = register(client, project, path, "policy", django_capture_on_commit_callbacks).json()
    changed = registration_status(client, project, changed["id"]).json()
    assert changed["status"] == "failed"
    assert "already registered" in changed["error"] and "other content" in changed["error"]
    assert ModelArtifact.objects.filter(origin="registered").count() == 1


# --- the request's location checks --------------------------------------------------------------


def post(client: Client, project: Project, path: str, kind: str = "policy") -> Any:
    return client.post(
        f"/api/projects/{project.id}/artifacts/",
        {"path": path, "kind": kind},
        content_type="application/json",
    )


def test_bad_locations_are_a_400_with_the_reason(
    ml_engineer: Any, project: Project, client: Client, model_files: dict[str, Path], tmp_path: Path
) -> None:
    client.force_login(ml_engineer)
    outside = tmp_path / "outside-model"
    shutil.copytree(model_files["policy"], outside)
    (tmp_path / "a-file").write_text("x")
    cases = {
        str(outside): "outside the allowed model roots",
        "relative/policy": "must be absolute",
        str(model_files["root"] / "nope"): "does not exist",
        str(tmp_path / "a-file"): "is not a directory",
        str(model_files["policy"] / "config.json"): "is not a directory",
        f"{model_files['root']}/..": "outside the allowed model roots",
    }
    for path, message in cases.items():
        response = post(client, project, path)
        assert response.status_code == 400, (path, response.content)
        body = response.json()
        assert message in body["message"], (path, body)
        assert "path" in body["extra"]["fields"] or body["code"] == "invalid"
    bad_kind = post(client, project, str(model_files["policy"]), kind="value")
    assert bad_kind.status_code == 400 and "kind" in bad_kind.json()["message"]
    missing = client.post(
        f"/api/projects/{project.id}/artifacts/",
        {"kind": "policy"},
        content_type="application/json",
    )
    assert missing.status_code == 400 and "path" in missing.json()["message"]
    assert ModelRegistration.objects.count() == 0 and ModelArtifact.objects.count() == 0


def test_symlinks_that_leave_the_roots_are_refused(
    ml_engineer: Any, project: Project, client: Client, model_files: dict[str, Path], tmp_path: Path
) -> None:
    client.force_login(ml_engineer)
    outside = tmp_path / "outside"
    shutil.copytree(model_files["policy"], outside)
    # the directory itself is a symlink (inside the root) to a directory outside it
    linked_dir = model_files["root"] / "linked-dir"
    linked_dir.unlink(missing_ok=True)
    linked_dir.symlink_to(outside, target_is_directory=True)
    # a file inside the directory links out of the roots
    linked_file = copy_into_root(model_files, "policy", "linked-file")
    (linked_file / "model.safetensors").unlink()
    (linked_file / "model.safetensors").symlink_to(outside / "model.safetensors")
    # a nested folder links out
    nested = copy_into_root(model_files, "policy", "linked-nested")
    (nested / "extra").symlink_to(tmp_path, target_is_directory=True)
    # a symlink loop inside the directory
    looping = copy_into_root(model_files, "policy", "linked-loop")
    (looping / "a").symlink_to(looping / "b")
    (looping / "b").symlink_to(looping / "a")
    # a symlink inside the roots is fine
    inside = copy_into_root(model_files, "policy", "linked-inside")
    (inside / "model.safetensors").unlink()
    (inside / "model.safetensors").symlink_to(model_files["policy"] / "model.safetensors")
    try:
        for path in (linked_dir, linked_file, nested):
            response = post(client, project, str(path))
            assert response.status_code == 400, (path, response.content)
            assert "outside the allowed model roots" in response.json()["message"]
        assert "symlink to" in post(client, project, str(linked_file)).json()["message"]
        loop = post(client, project, str(looping))
        assert loop.status_code == 400 and "symlink loop" in loop.json()["message"]
        self_loop = model_files["root"] / "self-loop"
        self_loop.unlink(missing_ok=True)
        self_loop.symlink_to(self_loop)
        assert post(client, project, str(self_loop)).status_code == 400
        assert post(client, project, str(inside)).status_code == 202
    finally:
        linked_dir.unlink()
    assert ModelArtifact.objects.count() == 0  # 202 only queued; nothing ran here


def test_model_roots_come_from_the_setting_else_the_artifact_root(
    settings: Any, tmp_path: Path
) -> None:
    from preflab.errors import InvalidInputError
    from preflab.settings import _model_roots
    from training.model_registration import checked_location, model_roots

    assert _model_roots("/a:/b/c:") == [Path("/a").resolve(), Path("/b/c").resolve()]
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="not an absolute path"):
        _model_roots("/a:relative")
    settings.PREFLAB_MODEL_ROOTS = []
    assert model_roots() == [Path(settings.ARTIFACT_ROOT).resolve()]
    inside = Path(settings.ARTIFACT_ROOT) / "byo" / "m"
    inside.mkdir(parents=True)
    assert checked_location(str(inside)) == inside.resolve()
    with pytest.raises(InvalidInputError, match="outside the allowed model roots"):
        checked_location(str(tmp_path))


# --- validation failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "kind", "reason"),
    [
        ("garbage-config", "policy", "config.json does not load"),
        ("no-tokenizer", "policy", "the tokenizer does not load"),
        ("no-weights", "policy", "holds no model weights"),
        ("causal-lm-as-reward", "reward", "a reward model must be a sequence classifier"),
        ("reward-as-policy", "policy", "register it with kind reward"),
        ("bad-manifest", "reward", "member 'member-9' is not a directory"),
        ("escaping-manifest", "reward", "is not a subdirectory of the ensemble"),
        ("remote-code", "policy", "config.json does not load"),
        ("empty", "tokenizer", "the tokenizer does not load"),
        ("tokenizer-too-big", "policy", "they do not belong together"),
    ],
)
def test_a_directory_that_does_not_validate_fails_with_the_reason_and_no_artifact(
    ml_engineer: Any,
    project: Project,
    client: Client,
    model_files: dict[str, Path],
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
    case: str,
    kind: str,
    reason: str,
) -> None:
    source = {"causal-lm-as-reward": "policy", "reward-as-policy": "reward"}.get(case, "policy")
    if case in ("bad-manifest", "escaping-manifest"):
        source = "ensemble"
    path = copy_into_root(model_files, source, case)
    if case == "garbage-config":
        (path / "config.json").write_text("{not json")
    elif case == "no-tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (path / name).unlink(missing_ok=True)
    elif case == "no-weights":
        (path / "model.safetensors").unlink()
    elif case == "bad-manifest":
        (path / ENSEMBLE_MANIFEST).write_text(json.dumps({"members": ["member-0", "member-9"]}))
    elif case == "escaping-manifest":
        (path / ENSEMBLE_MANIFEST).write_text(json.dumps({"members": ["../policy"]}))
    elif case == "remote-code":
        config = json.loads((path / "config.json").read_text())
        config |= {"model_type": "my-secret-arch", "auto_map": {"AutoConfig": "x.MyConfig"}}
        (path / "config.json").write_text(json.dumps(config))
    elif case == "tokenizer-too-big":
        config = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps(config | {"vocab_size": 100}))
    elif case == "empty":
        shutil.rmtree(path)
        path.mkdir()
    client.force_login(ml_engineer)
    response = register(client, project, path, kind, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    done = registration_status(client, project, response.json()["id"]).json()
    assert done["status"] == "failed"
    assert reason in done["error"], done["error"]
    assert done["artifact_id"] is None and done["finished_at"] is not None
    assert ModelArtifact.objects.count() == 0


def test_a_redelivered_task_changes_nothing(
    ml_engineer: Any, project: Project, model_files: dict[str, Path]
) -> None:
    from training.model_registration import request_registration
    from training.tasks import validate_model_registration

    registration = request_registration(
        project=project,
        path=str(model_files["tokenizer"]),
        kind="tokenizer",
        user=ml_engineer,
        enqueue=False,
    )
    result = validate_model_registration.apply(args=(registration.pk,)).get()
    assert result["status"] == "registered"
    again = validate_registration(registration.pk)
    assert again.artifact_id == result["artifact_id"]
    assert ModelArtifact.objects.count() == 1
    missing = validate_model_registration.apply(args=(registration.pk + 1000,)).get()
    assert missing["status"] == "missing"


def test_a_directory_changed_to_leave_the_roots_before_the_task_fails(
    ml_engineer: Any, project: Project, model_files: dict[str, Path], tmp_path: Path
) -> None:
    from training.model_registration import request_registration

    path = copy_into_root(model_files, "tokenizer", "moved-out")
    registration = request_registration(
        project=project, path=str(path), kind="tokenizer", user=ml_engineer, enqueue=False
    )
    (path / "tokenizer.json").rename(tmp_path / "tokenizer.json")
    (path / "tokenizer.json").symlink_to(tmp_path / "tokenizer.json")
    done = validate_registration(registration.pk)
    assert done.status == RegistrationStatus.FAILED
    assert "outside the allowed model roots" in done.error
    assert ModelArtifact.objects.count() == 0


# --- permissions --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["anonymous", "annotator", "project_admin", "other_engineer"])
def test_other_roles_cannot_register_or_read_registrations(
    make_user: Any,
    project: Project,
    other_project: Project,
    ml_engineer: Any,
    client: Client,
    model_files: dict[str, Path],
    role: str,
) -> None:
    from training.model_registration import request_registration

    registration = request_registration(
        project=project,
        path=str(model_files["tokenizer"]),
        kind="tokenizer",
        user=ml_engineer,
        enqueue=False,
    )
    if role != "anonymous":
        user = make_user(role)
        if role == "other_engineer":
            set_membership(project=other_project, user=user, role=Role.ML_ENGINEER)
        else:
            set_membership(project=project, user=user, role=role)
        client.force_login(user)
    # as the run-creation view answers: 403 for every role but the project's ML engineers
    assert post(client, project, str(model_files["policy"])).status_code == 403
    assert registration_status(client, project, registration.pk).status_code == 403
    listed = client.get(f"/api/projects/{project.id}/artifact-registrations/")
    assert listed.status_code == 403
    assert ModelRegistration.objects.count() == 1


def test_a_superuser_registering_into_a_missing_project_gets_a_404(
    django_user_model: Any, client: Client, model_files: dict[str, Path]
) -> None:
    root = django_user_model.objects.create_superuser("root", "root@example.org", "x")
    client.force_login(root)
    response = client.post(
        "/api/projects/987654/artifacts/",
        {"path": str(model_files["policy"]), "kind": "policy"},
        content_type="application/json",
    )
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert ModelRegistration.objects.count() == 0


def test_another_projects_registration_looks_missing(
    make_user: Any,
    project: Project,
    other_project: Project,
    ml_engineer: Any,
    client: Client,
    model_files: dict[str, Path],
) -> None:
    from training.model_registration import request_registration

    theirs = request_registration(
        project=other_project, path=str(model_files["tokenizer"]), kind="tokenizer", enqueue=False
    )
    client.force_login(ml_engineer)
    found = registration_status(client, project, theirs.pk)
    missing = registration_status(client, project, theirs.pk + 1000)
    assert found.status_code == missing.status_code == 404
    assert found.json() == missing.json()
    listed = client.get(f"/api/projects/{project.id}/artifact-registrations/").json()
    assert listed["results"] == []


def test_a_directory_registered_in_another_project_is_refused_here(
    project: Project, other_project: Project, model_files: dict[str, Path]
) -> None:
    from training.model_registration import request_registration

    path = str(model_files["tokenizer"])
    first = request_registration(project=other_project, path=path, kind="tokenizer", enqueue=False)
    assert validate_registration(first.pk).status == RegistrationStatus.REGISTERED
    second = request_registration(project=project, path=path, kind="tokenizer", enqueue=False)
    done = validate_registration(second.pk)
    assert done.status == RegistrationStatus.FAILED
    assert "already registered in another project" in done.error
    assert ModelArtifact.objects.filter(project=project).count() == 0


# --- the management command ---------------------------------------------------------------------


def test_the_command_registers_and_prints_what_it_recorded(
    project: Project, model_files: dict[str, Path]
) -> None:
    out = io.StringIO()
    call_command(
        "register_model",
        str(model_files["reward"]),
        "--kind",
        "reward",
        "--project",
        str(project.id),
        "--name",
        "rm-from-disk",
        stdout=out,
    )
    printed = json.loads(out.getvalue())
    artifact = ModelArtifact.objects.get(pk=printed["artifact"])
    assert artifact.name == "rm-from-disk" and artifact.origin == "registered"
    assert printed["info"]["num_labels"] == 1 and printed["info"] == artifact.model_info
    assert printed["path"] == str(model_files["reward"].resolve())


def test_the_command_fails_with_the_reason_and_a_non_zero_exit(
    project: Project, model_files: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match="a reward model must be a sequence classifier"):
        call_command(
            "register_model",
            str(model_files["policy"]),
            *("--kind", "reward", "--project", str(project.id)),
            stdout=io.StringIO(),
        )
    with pytest.raises(CommandError, match="outside the allowed model roots"):
        call_command(
            "register_model",
            str(tmp_path),
            *("--kind", "policy", "--project", str(project.id)),
            stdout=io.StringIO(),
        )
    with pytest.raises(CommandError, match="No project"):
        call_command(
            "register_model",
            str(model_files["policy"]),
            *("--kind", "policy", "--project", str(project.id + 1000)),
            stdout=io.StringIO(),
        )
    assert ModelArtifact.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_as_a_process(
    project: Project, model_files: dict[str, Path]
) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO, worker_env

    env = worker_env(PREFLAB_MODEL_ROOTS=str(model_files["root"]))
    command = [sys.executable, "manage.py", "register_model", "--project", str(project.id)]
    refused = subprocess.run(
        [*command, "relative/policy", "--kind", "policy"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    assert "path must be absolute" in refused.stderr
    failed = subprocess.run(
        [*command, str(model_files["policy"]), "--kind", "reward"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode != 0
    assert "a reward model must be a sequence classifier" in failed.stderr
    assert ModelArtifact.objects.count() == 0


# --- registered artifacts start runs and rounds ---------------------------------------------------


def project_with_prompts(project: Project, n: int = 6) -> None:
    import random

    rng = random.Random(0)
    rows = [
        {
            "id": f"q{i}",
            "prompt": [{"role": "user", "content": f"Say something about the sea {i}."}],
            "response_a": random_answer(rng),
            "response_b": random_answer(rng),
        }
        for i in range(n)
    ]
    import_comparisons(project=project, stream=jsonl(*rows), options=ImportOptions())


def test_a_ppo_run_and_a_round_start_from_registered_artifacts(
    ml_engineer: Any,
    project: Project,
    client: Client,
    model_files: dict[str, Path],
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from training.policy_runs import execute_policy_run

    project_with_prompts(project)
    client.force_login(ml_engineer)
    ids = {}
    for kind in ("policy", "reward"):
        body = register(
            client, project, model_files[kind], kind, django_capture_on_commit_callbacks
        ).json()
        ids[kind] = registration_status(client, project, body["id"]).json()["artifact_id"]
    assert None not in ids.values()

    # the start form lists the project's artifacts: the registered ones are among them
    listed = client.get(f"/api/projects/{project.id}/artifacts/").json()["results"]
    assert {ids["policy"], ids["reward"]} <= {a["id"] for a in listed}

    with django_capture_on_commit_callbacks(execute=False):
        created = client.post(
            f"/api/projects/{project.id}/training-runs/",
            {
                "kind": "ppo",
                "base_artifact": ids["policy"],
                "reward_artifact": ids["reward"],
                "config": {
                    "total_episodes": 8,
                    "batch_size": 4,
                    "mini_batch_size": 4,
                    "max_new_tokens": 4,
                },
            },
            content_type="application/json",
        )
    assert created.status_code == 201, created.content
    done = execute_policy_run(created.json()["id"])
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert done.output_artifact is not None
    assert done.output_artifact.parent_id == ids["policy"]
    assert done.output_artifact.origin == ArtifactOrigin.PREFLAB
    assert not Path(done.output_artifact.path).is_absolute()

    with django_capture_on_commit_callbacks(execute=False):
        started = client.post(
            f"/api/projects/{project.id}/rounds/",
            {"base_policy": ids["policy"], "config": {}},
            content_type="application/json",
        )
    assert started.status_code == 201, started.content
    assert started.json()["base_policy_id"] == ids["policy"]


def test_preflab_artifacts_keep_their_relative_paths(model_files: dict[str, Path]) -> None:
    staged = staging_dir("test")
    shutil.copytree(model_files["tokenizer"], staged, dirs_exist_ok=True)
    artifact = register_artifact(source=staged, name="tok", kind="tokenizer")
    assert not Path(artifact.path).is_absolute()
    assert artifact.origin == ArtifactOrigin.PREFLAB and artifact.model_info == {}
    assert (artifact_dir(artifact) / "tokenizer.json").is_file()


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_registration_is_validated_by_a_real_worker_over_redis(
    ml_engineer: Any,
    project: Project,
    client: Client,
    model_files: dict[str, Path],
    settings: Any,
    tmp_path: Path,
) -> None:
    import time

    from tests.conftest import start_worker, stop_worker, worker_env

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the suite's broker is not Redis (make test sets it when Redis answers)")
    worker = start_worker(
        worker_env(
            ARTIFACT_ROOT=str(settings.ARTIFACT_ROOT),
            PREFLAB_MODEL_ROOTS=str(model_files["root"]),
        ),
        queues="default",
        log=tmp_path / "worker.log",
    )
    try:
        client.force_login(ml_engineer)
        created = post(client, project, str(model_files["policy"]))
        assert created.status_code == 202, created.content
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = registration_status(client, project, created.json()["id"]).json()
            if body["status"] != "pending":
                break
            time.sleep(0.3)
    finally:
        stop_worker(worker)
    log = (tmp_path / "worker.log").read_text()
    assert body["status"] == "registered", (body, log[-3000:])
    assert "training.validate_model_registration" in log
    artifact = ModelArtifact.objects.get(pk=body["artifact_id"])
    assert artifact_dir(artifact) == model_files["policy"].resolve()
    assert artifact.model_info["parameter_count"] == body["info"]["parameter_count"] > 0
