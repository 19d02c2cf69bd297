"""The token ids a reward model reads, built exactly as its training built them.

A reward model trained by TRL's ``RewardTrainer`` (ours, or one trained elsewhere) saw each
preference row as:

- a **string row** (``prompt`` and ``chosen`` are text): ``tokenizer(prompt + chosen + EOS)``
  — the EOS text is appended unless the response already ends with it, and the tokenizer's
  post-processor adds its special tokens (a Llama-3 BOS) once;
- a **conversational row** (``prompt`` is a list of messages, ``chosen`` a list with the
  assistant's message): ``apply_chat_template(prompt + chosen, tokenize=True)`` — the
  template writes every special token itself (its BOS, its end-of-turn token and what
  follows it, such as Qwen2's newline); nothing is added a second time.

Its score is read at the last token that is not the pad token (the sequence-classification
head's rule). Scoring must present the same ids so the score is read at the same place.
Two ways to get them:

- :func:`training_ids` — from the prompt and the response *text*, with the reward model's
  own tokenizer and chat template: for a reward model whose tokenizer is not the policy's.
- :func:`sampled_ids` — from the policy's *sampled token ids* when both share one tokenizer:
  the prompt's ids, the response's ids before its stop token, and the ending the training
  form puts there (EOS for a string prompt; the template's end of turn for a conversation).
  A sample is then scored as the ids it is, never decoded and re-encoded.

Longer exchanges than the reward model's maximum are cut on the left (the prompt side, the
response's end is where the score is read) with the leading BOS kept (:func:`fit_length`).
Plain Python: imports no Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from training.ml.prompts import Prompt, prompt_ids, stop_token_ids

Completion = str | list[dict[str, str]]


def _as_messages(completion: Completion) -> list[dict[str, str]]:
    if isinstance(completion, str):
        return [{"role": "assistant", "content": completion}]
    return list(completion)


class NoChatTemplate(ValueError):
    """A conversation was to be scored by a model whose tokenizer has no chat template."""


def _template_ids(tokenizer: Any, messages: list[dict[str, str]], **kwargs: Any) -> list[int]:
    if not getattr(tokenizer, "chat_template", None):
        raise NoChatTemplate(
            "the model's tokenizer has no chat template, so it cannot read conversational "
            "prompts; use plain-text prompts or a tokenizer with a chat template"
        )
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)
    return list(encoded["input_ids"])


def training_ids(tokenizer: Any, prompt: Prompt, completion: Completion) -> list[int]:
    """The ids TRL's ``RewardTrainer`` builds for the row ``{prompt, chosen: completion}``
    (see the module's note). ``completion`` is the response text, or the assistant's
    messages as an export writes them for a conversation."""
    if isinstance(prompt, str):
        text = completion if isinstance(completion, str) else _content(completion)
        eos = tokenizer.eos_token
        if eos is not None and not text.endswith(eos):
            text = text + eos
        return list(tokenizer(text=prompt + text)["input_ids"])
    return _template_ids(tokenizer, [*prompt, *_as_messages(completion)])


def _content(messages: list[dict[str, str]]) -> str:
    return "".join(m.get("content", "") for m in messages)


def turn_end_ids(tokenizer: Any) -> tuple[int, ...] | None:
    """What the chat template writes after an assistant message's content: its end-of-turn
    token and whatever follows it (``<|im_end|>`` + newline for Qwen2, ``<|eot_id|>`` for
    Llama-3, ``<end_of_turn>`` + newline for Gemma). ``None`` when the template does not
    render a generation prompt that the full conversation extends, or ends a turn without
    a stop token: such conversations are scored through :func:`training_ids`."""
    from jinja2 import TemplateError

    probe = [{"role": "user", "content": "a"}]
    try:
        opened = _template_ids(tokenizer, probe, add_generation_prompt=True)
        closed = _template_ids(tokenizer, [*probe, {"role": "assistant", "content": "b"}])
    except (ValueError, TemplateError):  # no usable chat template
        return None
    stops = set(stop_token_ids(tokenizer))
    tail = closed[len(opened) :] if closed[: len(opened)] == opened else []
    for i, token in enumerate(tail):
        if token in stops:
            return tuple(tail[i:])
    return None


def sampled_ids(
    tokenizer: Any,
    prompt: Prompt,
    content_ids: Sequence[int],
    turn_end: Sequence[int] | None,
) -> list[int] | None:
    """The training form of a sampled response given as token ids (``content_ids``: the
    response's ids before its stop token, from a policy sharing ``tokenizer``;
    ``turn_end``: :func:`turn_end_ids` of that tokenizer, computed once by the caller).
    ``None`` when a conversation's turn ending cannot be told."""
    if isinstance(prompt, str):
        eos = tokenizer.eos_token_id
        return [*prompt_ids(tokenizer, prompt), *content_ids, *([eos] if eos is not None else [])]
    if turn_end is None:
        return None
    return [*prompt_ids(tokenizer, prompt), *content_ids, *turn_end]


def fit_length(ids: list[int], max_length: int, bos_id: int | None) -> tuple[list[int], bool]:
    """``ids`` cut to ``max_length`` from the left (the prompt side), keeping a leading BOS;
    and whether anything was cut."""
    if len(ids) <= max_length:
        return ids, False
    if bos_id is not None and ids and ids[0] == bos_id:
        return [ids[0], *ids[len(ids) - max_length + 1 :]], True
    return ids[len(ids) - max_length :], True
