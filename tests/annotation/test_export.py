"""Export: consensus rows in TRL's format, filters, split by prompt, files, lineage, API."""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from annotation.export import create_export, in_test_split
from annotation.export_options import InvalidExportOptions, parse_export_options
from annotation.models import DatasetExport, Project
from annotation.roles import Role
from annotation.services import exclude_annotator, set_membership
from tests.annotation.factories import seed_pairs
from tests.annotation.test_quality import judge, truth_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _artifacts(settings: Any, tmp_path: Path) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"


@pytest.fixture
def judged(project: Project, make_user: Any) -> tuple[Project, list[Any]]:
    seed_pairs(project, 30, gold={0: "A"})
    users = [make_user(n) for n in ("ada", "bo", "cy", "tie-lover")]
    for user in users:
        set_membership(project=project, user=user, role=Role.ANNOTATOR)

    def pick(i: int, lease: Any) -> str:
        return "tie" if i == 3 else truth_of(lease)

    judge(project, users, pick)
    return project, users


def rows_of(export: DatasetExport, split: str) -> list[dict[str, Any]]:
    path = Path(settings.ARTIFACT_ROOT) / export.path / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rows_follow_the_consensus_in_trl_format(
    judged: tuple[Project, list[Any]], project_admin: Any
) -> None:
    project, _ = judged
    export = create_export(project=project, options=parse_export_options({}), user=project_admin)
    rows = rows_of(export, "train") + rows_of(export, "test")
    assert len(rows) == export.train_rows + export.test_rows > 0
    row = rows[0]
    assert set(row) >= {
        "prompt",
        "chosen",
        "rejected",
        "margin",
        "votes",
        "agreement",
        "comparison_id",
        "batch_id",
        "judgment_ids",
        "label_counts",
    }
    assert row["prompt"][0]["role"] == "user"
    assert row["chosen"][0]["role"] == "assistant"
    for r in rows:
        number = int(r["prompt"][0]["content"].split("p")[-1].rstrip("?"))
        better = "one" if number % 2 == 0 else "two"
        assert better in r["chosen"][0]["content"]  # the hidden rule won
        assert r["label"] in ("A", "B")
        assert r["margin"] == pytest.approx(2 / 3, abs=1e-4)  # every vote says "better"
        assert r["strength"] == 3
        assert len(r["judgment_ids"]) == r["votes"]
    assert export.counts["rows"] == len(rows)
    assert not any(r["prompt_id"] == "p0" for r in rows)  # gold left out by default


def test_files_are_hashed_and_the_split_is_by_prompt(
    judged: tuple[Project, list[Any]], project_admin: Any
) -> None:
    project, _ = judged
    options = parse_export_options({"test_fraction": 0.3, "seed": 7})
    export = create_export(project=project, options=options, user=project_admin)
    folder = Path(settings.ARTIFACT_ROOT) / export.path
    for name, meta in export.files.items():
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert digest == meta["sha256"]
    train = {r["prompt_id"] for r in rows_of(export, "train")}
    test = {r["prompt_id"] for r in rows_of(export, "test")}
    assert train and test and not train & test
    assert all(in_test_split(p, 7, 0.3) for p in test)
    again = create_export(project=project, options=options, user=project_admin)
    assert again.files["train.jsonl"]["sha256"] == export.files["train.jsonl"]["sha256"]


def test_ties_kept_on_request_and_confidence_filter(
    judged: tuple[Project, list[Any]], project_admin: Any
) -> None:
    project, _ = judged
    default = create_export(project=project, options=parse_export_options({}), user=project_admin)
    strict = create_export(
        project=project, options=parse_export_options({"min_confidence": 0.99}), user=project_admin
    )
    assert strict.counts["rows"] < default.counts["rows"]
    assert strict.counts["low_confidence"] > 0
    standard = create_export(
        project=project,
        options=parse_export_options({"style": "standard", "ties": "keep", "min_votes": 3}),
        user=project_admin,
    )
    row = rows_of(standard, "train")[0]
    assert isinstance(row["prompt"], str) and isinstance(row["chosen"], str)


def test_excluded_annotators_are_left_out(
    judged: tuple[Project, list[Any]], project_admin: Any
) -> None:
    project, users = judged
    exclude_annotator(
        project=project, annotator_id=users[3].id, reason="ties only", by=project_admin
    )
    export = create_export(project=project, options=parse_export_options({}), user=project_admin)
    rows = rows_of(export, "train") + rows_of(export, "test")
    assert all(r["label_counts"]["tie"] == 0 for r in rows)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"consensus": "vibes"}, "consensus"),
        ({"min_votes": 0}, "min_votes"),
        (
            {"judged_after": "2026-02-01T00:00:00Z", "judged_before": "2026-01-01T00:00:00Z"},
            "judged_before",
        ),
        ({"formats": ["csv"]}, "formats"),
        ({"margins": {"1": 0}}, "margins"),
        ({"colour": "blue"}, "non_field_errors"),
    ],
)
def test_bad_options_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidExportOptions) as caught:
        parse_export_options(raw)
    assert field in caught.value.extra["fields"]


def test_unknown_batch_and_empty_result_are_clear_errors(
    judged: tuple[Project, list[Any]], project_admin: Any
) -> None:
    project, _ = judged
    with pytest.raises(InvalidExportOptions, match="Unknown batch"):
        create_export(
            project=project, options=parse_export_options({"batches": [999999]}), user=project_admin
        )
    with pytest.raises(InvalidExportOptions, match="No comparison is left"):
        create_export(
            project=project, options=parse_export_options({"min_votes": 50}), user=project_admin
        )
    assert DatasetExport.objects.count() == 0


def test_parquet_and_datasets_formats(
    judged: tuple[Project, list[Any]], project_admin: Any
) -> None:
    import datasets
    import pyarrow.parquet as pq

    project, _ = judged
    export = create_export(
        project=project,
        options=parse_export_options({"formats": ["jsonl", "parquet", "hf"]}),
        user=project_admin,
    )
    folder = Path(settings.ARTIFACT_ROOT) / export.path
    table = pq.read_table(folder / "train.parquet")
    assert table.num_rows == export.train_rows
    assert {"prompt", "chosen", "rejected", "margin"} <= set(table.column_names)
    loaded = datasets.load_from_disk(str(folder / "hf"))
    assert loaded["train"].num_rows == export.train_rows
    from_json = datasets.load_dataset(
        "json", data_files=str(folder / "train.jsonl"), cache_dir=str(folder.parent / "c")
    )["train"]
    assert from_json.num_rows == export.train_rows
    assert from_json[0]["chosen"][0]["role"] == "assistant"


def test_api_export_download_and_refusals(
    judged: tuple[Project, list[Any]], client: Client, ml_engineer: Any, annotator: Any
) -> None:
    project, _ = judged
    client.force_login(ml_engineer)
    created = client.post(
        f"/api/projects/{project.id}/exports/",
        {"test_fraction": 0.2},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "succeeded" and body["created_by"] == "mleng"
    url = body["files"]["train.jsonl"]["url"]
    download = client.get(url)
    assert download.status_code == 200
    content = b"".join(download.streaming_content)
    assert hashlib.sha256(content).hexdigest() == download["X-Content-SHA256"]
    base = f"/api/projects/{project.id}/exports/{body['id']}"
    assert client.get(f"{base}/files/..%2F..%2Fsettings.py").status_code == 404
    assert client.get(f"{base}/").json()["id"] == body["id"]
    bad = client.post(
        f"/api/projects/{project.id}/exports/", {"ties": "maybe"}, content_type="application/json"
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_export"

    other = Client()
    other.force_login(annotator)
    assert other.get(f"/api/projects/{project.id}/exports/").status_code == 403
    assert other.get(url).status_code == 403
    assert (
        other.post(
            f"/api/projects/{project.id}/exports/", {}, content_type="application/json"
        ).status_code
        == 403
    )


def test_export_of_another_projects_admin_is_refused(
    judged: tuple[Project, list[Any]], other_project: Project, client: Client, make_user: Any
) -> None:
    project, _ = judged
    outsider = make_user("outsider-admin")
    set_membership(project=other_project, user=outsider, role=Role.PROJECT_ADMIN)
    client.force_login(outsider)
    assert (
        client.post(
            f"/api/projects/{project.id}/exports/", {}, content_type="application/json"
        ).status_code
        == 403
    )


def test_management_command(judged: tuple[Project, list[Any]], project_admin: Any) -> None:
    project, _ = judged
    out = io.StringIO()
    call_command(
        "export_preferences",
        str(project.id),
        "--user",
        "padmin",
        "--options",
        '{"test_fraction": 0}',
        stdout=out,
    )
    result = json.loads(out.getvalue())
    assert result["test_rows"] == 0 and result["train_rows"] > 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_large_exports_run_on_a_worker_with_progress(
    judged: tuple[Project, list[Any]],
    client: Client,
    project_admin: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    from tests.conftest import start_worker, stop_worker, worker_env

    settings.PREFLAB_EXPORT_SYNC_MAX = 0
    project, _ = judged
    worker = start_worker(
        worker_env(ARTIFACT_ROOT=str(settings.ARTIFACT_ROOT)), log=tmp_path / "worker.log"
    )
    try:
        client.force_login(project_admin)
        queued = client.post(
            f"/api/projects/{project.id}/exports/", {}, content_type="application/json"
        )
        assert queued.status_code == 202
        url = f"/api/projects/{project.id}/exports/{queued.json()['id']}/"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = client.get(url).json()
            if body["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.3)
    finally:
        stop_worker(worker)
    assert body["status"] == "succeeded", body
    assert body["progress"] == 1.0 and body["train_rows"] > 0
    assert client.get(body["files"]["train.jsonl"]["url"]).status_code == 200


@pytest.mark.slow
def test_trl_reward_trainer_accepts_the_export_unchanged(
    judged: tuple[Project, list[Any]], project_admin: Any, tmp_path: Path
) -> None:
    """The exported JSONL goes straight into TRL's RewardTrainer (with its margin column),
    on a tiny model built here and loaded through from_pretrained."""
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from training.ml.tiny import build_causal_lm, build_tokenizer

    project, _ = judged
    export = create_export(
        project=project, options=parse_export_options({"test_fraction": 0.3}), user=project_admin
    )
    folder = Path(settings.ARTIFACT_ROOT) / export.path
    data = datasets.load_dataset(
        "json",
        data_files={"train": str(folder / "train.jsonl"), "test": str(folder / "test.jsonl")},
        cache_dir=str(tmp_path / "hf-cache"),
    )
    texts = [m["content"] for row in data["train"] for m in row["prompt"] + row["chosen"]]
    tokenizer_dir = build_tokenizer(texts * 3, tmp_path / "tok", vocab_size=300)
    base = build_causal_lm(tokenizer_dir, tmp_path / "base", hidden=32, layers=1, heads=2)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(
            output_dir=str(tmp_path / "out"),
            max_steps=3,
            per_device_train_batch_size=4,
            per_device_eval_batch_size=4,
            use_cpu=True,
            bf16=False,
            report_to=[],
            logging_steps=1,
            save_strategy="no",
            eval_strategy="no",
        ),
        train_dataset=data["train"],
        eval_dataset=data["test"],
        processing_class=tokenizer,
    )
    result = trainer.train()
    assert result.global_step == 3
    metrics = trainer.evaluate()
    assert "eval_loss" in metrics and metrics["eval_loss"] > 0


def test_dawid_skene_consensus_export(
    judged: tuple[Project, list[Any]], project_admin: Any
) -> None:
    project, _ = judged
    export = create_export(
        project=project,
        options=parse_export_options({"consensus": "dawid_skene", "include_gold": True}),
        user=project_admin,
    )
    rows = rows_of(export, "train") + rows_of(export, "test")
    assert rows and all(0.5 <= r["agreement"] <= 1.0 for r in rows)
    assert any(r["prompt_id"] == "p0" for r in rows)  # gold kept on request
    assert export.filters["consensus"] == "dawid_skene"


def test_a_rows_strength_is_the_median_of_its_agreeing_votes(
    project: Project, make_user: Any, project_admin: Any
) -> None:
    from annotation import queue

    seed_pairs(project, 1)
    for name, strength in (("strong", 4), ("slight", 2)):
        user = make_user(name)
        set_membership(project=project, user=user, role=Role.ANNOTATOR)
        lease = queue.lease_next(project_id=project.id, user=user)
        assert lease is not None
        queue.submit_judgment(  # both prefer A, however the pair was shown
            project_id=project.id,
            assignment_id=lease.id,
            user=user,
            data=queue.JudgmentInput(
                choice="right" if lease.swapped else "left", strength=strength
            ),
        )
    margins = {"4": 3, "3": 2, "2": 1, "1": 0.5}
    options = parse_export_options({"test_fraction": 0, "margins": margins})
    export = create_export(project=project, options=options, user=project_admin)
    [row] = rows_of(export, "train")
    # votes of 4 ("significantly") and 2 ("slightly") make a 3 ("better"), not a 4
    assert row["strength"] == 3 and row["margin"] == 2.0


def test_lineage_counts_exactly_the_judgments_in_the_exports_rows(
    judged: tuple[Project, list[Any]], project_admin: Any
) -> None:
    from annotation.models import Judgment
    from training.round_selectors import export_judgments

    project, users = judged
    exclude_annotator(
        project=project, annotator_id=users[3].id, reason="ties only", by=project_admin
    )
    export = create_export(project=project, options=parse_export_options({}), user=project_admin)
    rows = rows_of(export, "train") + rows_of(export, "test")
    in_rows = {j for r in rows for j in r["judgment_ids"]}
    behind = export_judgments(export)
    assert behind["count"] == len(in_rows) > 0
    assert behind["annotators"] == 3  # the excluded annotator's judgments are not behind it
    everything = Judgment.objects.filter(comparison_id__in=[r["comparison_id"] for r in rows])
    assert everything.count() > behind["count"]  # what the window alone would have counted
