"""GRPO, RLOO and DPO through TRL on tiny local models (standalone, no Django database)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.training.test_reward import synthetic_rows, tiny_base_model, write_jsonl
from training.ml.config import ConfigError
from training.ml.policy_trl import (
    METRICS_FILE,
    main,
    parse_dpo_config,
    parse_grpo_config,
    parse_rloo_config,
    reward_function,
    train_dpo,
    train_rloo,
)
from training.ml.prompts import stop_token_ids
from training.ml.scoring import ENSEMBLE_MANIFEST, RewardScorer

REPO = Path(__file__).resolve().parents[2]
TINY_RUN = {"total_episodes": 24, "batch_size": 8, "num_generations": 4, "max_new_tokens": 8}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny policy, an (untrained, seeded) reward model, a two-member ensemble and a
    prompt file, built once (conftest.py keeps torch on one thread)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    root = tmp_path_factory.mktemp("policy_trl")
    base = tiny_base_model(root)
    tokenizer = AutoTokenizer.from_pretrained(base)

    def reward_model(directory: Path, seed: int) -> Path:
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        return directory

    reward = reward_model(root / "rm", 1)
    ensemble = root / "ensemble"
    for i in range(2):
        reward_model(ensemble / f"member-{i}", 10 + i)
    (ensemble / ENSEMBLE_MANIFEST).write_text(
        json.dumps({"members": ["member-0", "member-1"], "lambda": 1.0})
    )
    prompts = write_jsonl(
        root / "prompts.jsonl", [{"prompt": r["prompt"]} for r in synthetic_rows(16, 5)]
    )
    return {"root": root, "base": base, "reward": reward, "ensemble": ensemble, "prompts": prompts}


def changed_parameters(before: Path, after: Path) -> list[str]:
    from transformers import AutoModelForCausalLM

    start = AutoModelForCausalLM.from_pretrained(before).state_dict()
    end = AutoModelForCausalLM.from_pretrained(after).state_dict()
    assert start.keys() == end.keys()
    return [name for name in start if not start[name].equal(end[name])]


def logprob_margin(model_dir: Path, rows: list[dict[str, Any]]) -> float:
    """Mean over rows of log π(chosen) − log π(rejected), summed over the response tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def logprob(prompt: list[dict[str, str]], response: list[dict[str, str]]) -> float:
        context = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(prompt + response, tokenize=False)
        assert full.startswith(context)
        n_context = len(tokenizer(context, add_special_tokens=False)["input_ids"])
        ids = torch.tensor([tokenizer(full, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logps = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        targets = ids[0, 1:]
        token_logps = logps.gather(1, targets.unsqueeze(1)).squeeze(1)
        return float(token_logps[n_context - 1 :].sum())

    margins = [
        logprob(r["prompt"], r["chosen"]) - logprob(r["prompt"], r["rejected"]) for r in rows
    ]
    return sum(margins) / len(margins)


# --------------------------------------------------------------------------- configs


def test_defaults_parse_and_document_the_kl_choice() -> None:
    grpo, rloo, dpo = parse_grpo_config({}), parse_rloo_config({}), parse_dpo_config({})
    assert grpo.beta == 0.04 and rloo.beta == 0.05  # GRPO regularised, unlike TRL's 0.0
    assert grpo.batch_size % grpo.num_generations == 0
    assert grpo.steps == grpo.total_episodes // grpo.batch_size
    assert dpo.loss_type == "sigmoid" and dpo.beta == 0.1


@pytest.mark.parametrize(
    ("parse", "raw", "bad"),
    [
        (parse_grpo_config, {"colour": 1, "num_generations": 1, "beta": "high"}, None),
        (parse_grpo_config, {"loss_type": "ppo", "top_p": 0}, None),
        (parse_rloo_config, {"batch_size": 6, "num_generations": 4}, {"batch_size"}),
        (parse_rloo_config, {"batch_size": 64, "total_episodes": 32}, {"batch_size"}),
        (parse_dpo_config, {"loss_type": "kto", "batch_size": 0, "max_steps": 1.5}, None),
        (parse_dpo_config, {"label_smoothing": 0.1}, {"label_smoothing"}),
    ],
)
def test_config_errors_name_each_bad_field(
    parse: Any, raw: dict[str, Any], bad: set[str] | None
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    assert set(caught.value.fields) == (bad if bad is not None else set(raw))
    for field_name in caught.value.fields:
        assert field_name in str(caught.value)


def test_cli_rejects_a_bad_config_naming_the_fields(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"num_generations": 1, "colour": "red"}))
    commands = {
        "grpo": ["--reward", str(tmp_path), "--prompts", str(tmp_path / "p.jsonl")],
        "dpo": ["--train", str(tmp_path / "t.jsonl")],
    }
    for algorithm, extra in commands.items():
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "training.ml.policy_trl",
                algorithm,
                "--policy",
                str(tmp_path),
                "--out",
                str(tmp_path / "out"),
                "--config",
                str(config),
                *extra,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "colour" in result.stderr
        assert "num_generations" in result.stderr
        assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- reward


def test_reward_function_scores_as_the_scorer_and_penalises_unfinished(
    models: dict[str, Path],
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models["base"])
    stop = stop_token_ids(tokenizer)
    end_of_turn = tokenizer.convert_tokens_to_ids("<|end|>")
    assert end_of_turn in stop and tokenizer.eos_token_id in stop
    rows = synthetic_rows(4, 9)
    prompts = [r["prompt"] for r in rows]
    answers = [r["chosen"][0]["content"] for r in rows]
    completions = [[{"role": "assistant", "content": f" {a} "}] for a in answers]
    ids = [tokenizer(a)["input_ids"] for a in answers]
    completion_ids = [ids[0] + [end_of_turn], ids[1] + [tokenizer.eos_token_id], ids[2], ids[3]]

    fn = reward_function(
        models["reward"], tokenizer=tokenizer, ensemble_lambda=1.0, missing_eos_penalty=0.75
    )
    assert fn.__name__ == "reward_model"  # TRL's metric rewards/reward_model/…
    expected = RewardScorer(models["reward"]).score_exchanges(prompts, answers).scores.mean
    logged: dict[str, float] = {}
    got = fn(
        prompts=prompts,
        completions=completions,
        completion_ids=completion_ids,
        log_metric=logged.__setitem__,
        trainer_state=None,
    )
    assert got[:2] == pytest.approx(expected[:2], abs=1e-6)  # ended: no penalty
    assert got[2:] == pytest.approx([e - 0.75 for e in expected[2:]], abs=1e-6)
    assert logged["finished"] == 0.5
    assert logged["score"] == pytest.approx(sum(expected) / 4, abs=1e-6)
    assert fn(prompts=prompts, completions=completions) == pytest.approx(expected, abs=1e-6)

    # Plain-text prompts take string completions, concatenated as the reward model saw them.
    plain = fn(prompts=["a cat?", "a dog?"], completions=[" thanks", "whatever"])
    scored = (
        RewardScorer(models["reward"])
        .score_exchanges(["a cat?", "a dog?"], ["thanks", "whatever"])
        .scores.mean
    )
    assert plain == pytest.approx(scored, abs=1e-6)

    # An ensemble scores the conservative mean − λ·std.
    ensemble = reward_function(
        models["ensemble"], tokenizer=tokenizer, ensemble_lambda=2.0, missing_eos_penalty=0.0
    )
    members = RewardScorer(models["ensemble"]).score_exchanges(prompts, answers).scores
    assert ensemble(prompts=prompts, completions=completions) == pytest.approx(
        members.conservative(2.0), abs=1e-6
    )
    assert all(s > 0 for s in members.std)

    # An empty completion (a stop token first) scores below every real one of its batch.
    empty = [[{"role": "assistant", "content": "  "}]]
    floored = fn(
        prompts=prompts + prompts[:1],
        completions=completions + empty,
        completion_ids=[*completion_ids, [end_of_turn]],
    )
    assert floored[:4] == pytest.approx(got, abs=1e-6)
    assert floored[4] == pytest.approx(min(expected) - 1.0, abs=1e-6)  # before any EOS penalty


# --------------------------------------------------------------------------- training


@pytest.mark.slow
def test_grpo_cli_trains_a_loadable_policy_with_a_reward_and_kl_history(
    models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = models["root"] / "grpo"
    config = models["root"] / "grpo.json"
    config.write_text(json.dumps(TINY_RUN | {"learning_rate": 1e-3}))  # beta: default 0.04
    code = main(
        [
            "grpo",
            "--policy",
            str(models["base"]),
            "--reward",
            str(models["reward"]),
            "--prompts",
            str(models["prompts"]),
            "--out",
            str(out),
            "--config",
            str(config),
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)  # stdout is the JSON result alone
    metrics = printed["metrics"]
    assert printed["config"]["beta"] == 0.04
    assert metrics["algorithm"] == "grpo" and metrics["steps"] == 3 and metrics["episodes"] == 24
    assert metrics["precision"] == "fp32"
    history = metrics["history"]
    assert [h["step"] for h in history] == [1, 2, 3]
    assert all(isinstance(h["reward"], float) for h in history)
    assert all(isinstance(h["kl"], float) and h["kl"] >= -1e-6 for h in history)  # k3 ≥ 0
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # the reference is the start
    # reward = score − penalty × unfinished share, as the reward function returned it
    for h in history:
        assert h["reward"] == pytest.approx(h["score"] - (1 - h["finished"]), abs=1e-4)
    assert metrics["final_reward"] == history[-1]["reward"]
    assert json.loads((out / METRICS_FILE).read_text())["steps"] == 3

    policy = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert sorted(policy.generation_config.eos_token_id) == stop_token_ids(tokenizer)
    assert changed_parameters(models["base"], out)


@pytest.mark.slow
def test_rloo_with_lora_saves_a_merged_policy_whose_weights_moved(
    models: dict[str, Path],
) -> None:
    from transformers import AutoModelForCausalLM

    out = models["root"] / "rloo"
    config = parse_rloo_config(TINY_RUN | {"learning_rate": 5e-2, "lora_rank": 4})
    metrics = train_rloo(
        policy=models["base"],
        reward=models["reward"],
        prompts_file=models["prompts"],
        out=out,
        config=config,
    )
    assert metrics["algorithm"] == "rloo" and metrics["steps"] == 3
    assert len(metrics["history"]) == 3
    assert all(isinstance(h["reward"], float) for h in metrics["history"])
    assert metrics["mean_reward"] is not None and metrics["final_kl"] is not None
    assert not (out / "adapter_config.json").exists()
    policy = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in name for name, _ in policy.named_parameters())
    moved = changed_parameters(models["base"], out)
    assert moved and all("q_proj" in n or "v_proj" in n for n in moved)  # LoRA's targets


@pytest.mark.slow
def test_dpo_raises_the_held_out_log_prob_margin(models: dict[str, Path]) -> None:
    root = models["root"]
    train_rows = synthetic_rows(32, 1)
    assert {"margin", "strength", "agreement", "comparison_id"} <= set(train_rows[0])
    train = write_jsonl(root / "dpo-train.jsonl", train_rows)
    held_out_rows = synthetic_rows(16, 2)
    held_out = write_jsonl(root / "dpo-eval.jsonl", held_out_rows)
    config = parse_dpo_config(
        {"learning_rate": 3e-3, "batch_size": 8, "epochs": 1, "max_length": 128}
    )
    before = logprob_margin(models["base"], held_out_rows)
    metrics = train_dpo(
        policy=models["base"], train_file=train, eval_file=held_out, out=root / "dpo", config=config
    )
    after = logprob_margin(root / "dpo", held_out_rows)
    assert after > before + 1.0, (before, after)
    assert metrics["steps"] == 4 and metrics["pairs"] == 32
    assert [h["step"] for h in metrics["history"]] == [1, 2, 3, 4]
    assert metrics["history"][0]["reward_margin"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["eval"]["n"] == 16
    assert metrics["eval"]["reward_margin"] > 0
    # TRL's implicit reward margin is β × the log-ratio margin our own computation gives.
    assert metrics["eval"]["reward_margin"] == pytest.approx(0.1 * (after - before), rel=1e-3)


class WorkerLost(BaseException):
    """Stands for a SIGKILLed worker (not an ``Exception``: nothing handles it)."""


def lose_the_worker_after_checkpoint(step: int) -> Any:
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == step:  # the checkpoint of this step is complete
                raise WorkerLost

    return Kill()


def count_steps(steps: list[int]) -> Any:
    from transformers import TrainerCallback

    class Count(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            steps.append(state.global_step)

    return Count()


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["grpo", "dpo"])
def test_a_run_lost_after_a_checkpoint_resumes_there_with_its_whole_history(
    models: dict[str, Path], tmp_path: Path, algorithm: str
) -> None:
    from training.ml.policy_trl import train_grpo

    checkpoints = tmp_path / "checkpoints"

    def train(callbacks: list[Any]) -> dict[str, Any]:
        if algorithm == "grpo":
            config = parse_grpo_config(TINY_RUN | {"total_episodes": 32, "checkpoint_steps": 2})
            return train_grpo(
                policy=models["base"],
                reward=models["reward"],
                prompts_file=models["prompts"],
                out=tmp_path / "out",
                config=config,
                callbacks=callbacks,
                checkpoint_dir=checkpoints,
            )
        rows = write_jsonl(tmp_path / "train.jsonl", synthetic_rows(32, 1))
        dpo = {"batch_size": 8, "max_length": 128, "checkpoint_steps": 2}
        return train_dpo(
            policy=models["base"],
            train_file=rows,
            eval_file=None,
            out=tmp_path / "out",
            config=parse_dpo_config(dpo),
            callbacks=callbacks,
            checkpoint_dir=checkpoints,
        )

    with pytest.raises(WorkerLost):
        train([lose_the_worker_after_checkpoint(2)])
    assert (checkpoints / "checkpoint-2" / "trainer_state.json").exists()
    assert not (tmp_path / "out").exists()  # nothing saved as a result

    stepped: list[int] = []
    metrics = train([count_steps(stepped)])
    assert metrics["resumed"] is True
    assert stepped == [3, 4]  # only the steps after the checkpoint ran again
    assert metrics["steps"] == 4
    # the history up to the checkpoint came back with it: every step once
    assert [h["step"] for h in metrics["history"]] == [1, 2, 3, 4]
    assert changed_parameters(models["base"], tmp_path / "out")

    # Lost once more, after the last checkpoint but before the run was registered: the
    # final checkpoint is passed over (resuming a finished state would take a fifth step),
    # and the steps after the one before are redone.
    assert (checkpoints / "checkpoint-4").is_dir()
    stepped.clear()
    again = train([count_steps(stepped)])
    assert again["resumed"] is True and again["steps"] == 4 and stepped == [3, 4]
    assert [h["step"] for h in again["history"]] == [1, 2, 3, 4]
