"""The reward server in OpenRLHF's remote-reward protocol: a query decoded the way OpenRLHF
decodes its sequences (left padding, special tokens, the stop token) is scored on exactly the
ids the reward model read in training, for plain-text and chat-template prompts, on Llama-3-
and Qwen2-shaped tokenizers; bad requests get a 400 with the reason."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from tests.training.families import LLAMA3, QWEN2, Family, build_family_model
from training.ml.prompts import Prompt, prompt_ids, stop_token_ids
from training.ml.reward_input import training_ids

pytestmark = pytest.mark.slow


def reward_model(family: Family, root: Path) -> Path:
    """A random-headed sequence classifier of the family, saved with its tokenizer."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    policy = build_family_model(family, root / "policy")
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1)
    model.save_pretrained(root / "reward")
    AutoTokenizer.from_pretrained(policy).save_pretrained(root / "reward")
    return root / "reward"


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


@pytest.mark.parametrize("family", [LLAMA3, QWEN2], ids=lambda f: f.name)
def test_openrlhf_queries_are_scored_as_the_reward_model_was_trained(
    family: Family, tmp_path: Path
) -> None:
    from training.ml.reward_server import RewardService, serve
    from training.ml.scoring import RewardScorer

    reward = reward_model(family, tmp_path)
    service = RewardService(reward, max_length=256)
    server = serve(service, "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        tokenizer = service.scorer.tokenizer
        stop = stop_token_ids(tokenizer)[-1]
        exchanges: list[tuple[Prompt, str]] = [
            ([{"role": "user", "content": "what is the cat"}], "the cat sat on the mat"),
            ([{"role": "user", "content": "how fast"}], "slow and happy"),
            ("Q: why the river\nA:", " the sun and the moon"),
        ]
        queries, prompts = [], []
        for prompt, response in exchanges:
            prompt_text = (
                prompt
                if isinstance(prompt, str)
                else str(
                    tokenizer.apply_chat_template(
                        prompt, tokenize=False, add_generation_prompt=True
                    )
                )
            )
            ids = [
                *[tokenizer.pad_token_id] * 3,  # a left-padded rollout batch
                *prompt_ids(tokenizer, prompt),
                *tokenizer(response, add_special_tokens=False)["input_ids"],
                stop,
            ]
            queries.append(tokenizer.decode(ids, skip_special_tokens=False))
            prompts.append(prompt_text)
        body = {"query": queries, "prompts": prompts, "labels": [""] * 3}
        status, answer = call(port, "POST", "/get_reward", body)
        assert status == 200, answer
        trained = [
            training_ids(
                tokenizer,
                prompt,
                response
                if isinstance(prompt, str)
                else [{"role": "assistant", "content": response}],
            )
            for prompt, response in exchanges
        ]
        assert [service.query_ids(q, p) for q, p in zip(queries, prompts, strict=True)] == trained
        expected = RewardScorer(reward, max_length=256).score_rows(trained).scores.mean
        assert answer["rewards"] == pytest.approx(expected, abs=1e-5)
        assert answer["scores"] == answer["rewards"]
    finally:
        server.shutdown()


def test_bad_requests_get_a_400_with_the_reason(tmp_path: Path) -> None:
    from training.ml.reward_server import RewardService, serve

    service = RewardService(reward_model(LLAMA3, tmp_path))
    server = serve(service, "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        cases = [
            (b"{not json", "not JSON"),
            (b"[" * 100_000, "not JSON"),
            ([1, 2], "JSON object"),
            ({"query": "one string"}, "list of strings"),
            ({"query": ["a", 3]}, "list of strings"),
            ({"query": ["a"], "prompts": ["a", "b"]}, "one per query"),
            ({"query": ["a"] * 5000}, "at most"),
        ]
        for body, reason in cases:
            status, answer = call(port, "POST", "/get_reward", body)
            assert status == 400 and reason in answer["error"], (body, answer)
        assert call(port, "POST", "/other", {"query": []})[0] == 404
        assert call(port, "GET", "/health") == (200, {"status": "ok"})
        status, answer = call(port, "POST", "/get_reward", {"query": []})
        assert status == 200 and answer["rewards"] == []
    finally:
        server.shutdown()
