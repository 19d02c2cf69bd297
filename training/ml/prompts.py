"""Prompt files of the policy algorithms and how a prompt (plain text or a conversation)
becomes model input. Plain Python: imports no Django.

A prompt file is JSONL, one object per line with ``prompt``: a string, or a conversation
``[{"role": "user", "content": "…"}, …]`` (rendered with the tokenizer's chat template).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.ml.config import ConfigError

Prompt = str | list[dict[str, str]]


def load_prompts(path: Path) -> list[Prompt]:
    """The prompts of a JSONL file; a bad line raises :class:`ConfigError` naming the line."""
    prompts: list[Prompt] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError({"prompts": f"line {number}: not JSON ({exc})"}) from None
            prompt = value.get("prompt") if isinstance(value, dict) else None
            if prompt is None or not _valid(prompt):
                raise ConfigError(
                    {"prompts": f"line {number}: 'prompt' must be a string or a list of messages"}
                )
            prompts.append(prompt)
    if not prompts:
        raise ConfigError({"prompts": "the file holds no prompts"})
    return prompts


def _valid(prompt: Any) -> bool:
    if isinstance(prompt, str):
        return bool(prompt)
    return (
        isinstance(prompt, list)
        and bool(prompt)
        and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in prompt
        )
    )


def render_prompt(tokenizer: Any, prompt: Prompt) -> str:
    """The text the policy continues: a conversation through the chat template with the
    generation prompt, plain text as it is."""
    if isinstance(prompt, str):
        return prompt
    return str(tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True))


def render_exchange(tokenizer: Any, prompt: Prompt, response: str) -> str:
    """Prompt and response as the reward model saw them in training (the same text as
    :func:`training.ml.reward.pair_text` builds for a TRL-format row)."""
    if isinstance(prompt, str):
        return prompt + response
    messages = [*prompt, {"role": "assistant", "content": response}]
    return str(tokenizer.apply_chat_template(messages, tokenize=False))


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Tokens that end a response: EOS, and the chat template's end-of-turn token if any."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for token in ("<|end|>", "<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id >= 0:
            ids.append(token_id)
    return sorted(set(ids))
