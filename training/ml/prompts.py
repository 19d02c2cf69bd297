"""Prompt files of the policy algorithms and how a prompt (plain text or a conversation)
becomes model input. Plain Python: imports no Django.

A prompt file is JSONL, one object per line with ``prompt``: a string, or a conversation
``[{"role": "user", "content": "…"}, …]`` (rendered with the tokenizer's chat template).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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


def prompt_ids(tokenizer: Any, prompt: Prompt) -> list[int]:
    """The ids the policy continues: plain text through the tokenizer (its post-processor
    adds a BOS where it has one), a conversation through the chat template with its
    generation prompt, tokenized by the template itself (special tokens written once: a
    template that writes its own BOS does not get a second one)."""
    if isinstance(prompt, str):
        return list(tokenizer(text=prompt)["input_ids"])
    encoded = tokenizer.apply_chat_template(
        prompt, tokenize=True, add_generation_prompt=True, return_dict=True
    )
    return list(encoded["input_ids"])


def encode_prompts(tokenizer: Any, prompts: Sequence[Prompt]) -> dict[str, Any]:
    """A left-padded batch (``input_ids``, ``attention_mask`` tensors) of :func:`prompt_ids`."""
    rows = [prompt_ids(tokenizer, p) for p in prompts]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch_tensor([[pad] * (width - len(r)) + r for r in rows]),
        "attention_mask": torch_tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows]),
    }


def torch_tensor(rows: list[list[int]]) -> Any:
    import torch

    return torch.tensor(rows, dtype=torch.long)


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Tokens that end a response: EOS, and the chat template's end-of-turn token if any."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for token in ("<|end|>", "<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id >= 0:
            ids.append(token_id)
    return sorted(set(ids))
