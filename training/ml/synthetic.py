"""A synthetic preference task with a known rule, for tests, benchmarks, the demo and the
annotator simulator: the *gold* reward that simulated annotators follow and the policy does
not know. Plain Python: imports no Django.

Responses are short sequences of words. Some words are good (+1), some bad (−1), the rest
neutral; the gold reward of a response is the mean value of its words. The starting policy
is a tiny Llama pre-trained here to answer with uniformly random words, so it scores about 0
and has room to improve; a reward model trained on gold-labelled pairs is the proxy that
PPO, GRPO and RLOO optimize, and the gold reward measures what they really achieved.

A second task, *nature-length*, shares the vocabulary and the starting policy but has another
gold rule (nature words +1, town words −1, the rest 0) and a reward model trained on labels
with a length bias and label noise: its annotators also favour longer answers, so a policy
that pads its answers with filler pleases the proxy while its gold score falls — the trap
that over-optimization falls into (:data:`TASKS` holds both).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOOD = "kind bright calm clear fresh gentle honest warm brave wise happy lucid".split()
BAD = "rude dull harsh vague stale cruel false cold timid dumb angry murky".split()
NEUTRAL = (
    "river stone cloud tree house road paper window garden letter market bridge "
    "table candle forest engine valley mirror basket ladder summer island planet record"
).split()
WORDS = GOOD + BAD + NEUTRAL
TOPICS = (
    "sea city winter music friend morning journey book storm school kitchen mountain "
    "harbor library festival train desert village orchard museum"
).split()
VALUE = {w: 1 for w in GOOD} | {w: -1 for w in BAD}
NATURE = "river stone cloud tree forest valley island garden summer planet".split()
TOWN = "house road paper window market bridge table candle engine mirror".split()
NATURE_VALUE = {w: 1 for w in NATURE} | {w: -1 for w in TOWN}
OTHER = [w for w in WORDS if w not in NATURE_VALUE]  # neither nature nor town


def gold_score(text: str) -> float:
    """The known rule: the mean value of the response's words (0 for an empty response)."""
    return _mean_value(text, VALUE)


def nature_score(text: str) -> float:
    """The nature-length task's gold rule: the mean of +1 per nature word, −1 per town word
    (0 for an empty response). Length earns nothing: filler only dilutes the mean."""
    return _mean_value(text, NATURE_VALUE)


def _mean_value(text: str, values: dict[str, int]) -> float:
    words = text.split()
    return sum(values.get(w.strip(".,!?").lower(), 0) for w in words) / len(words) if words else 0.0


def prompt_messages(rng: random.Random) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Say something about the {rng.choice(TOPICS)}."}]


def prompt_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Prompt-file rows (``{"prompt": [messages]}``) of the task."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    return [{"prompt": prompt_messages(rng)} for _ in range(n)]


def random_answer(
    rng: random.Random, *, good: float | None = None, bad: float | None = None
) -> str:
    """Random words (6–16); with ``good``/``bad`` shares the mix is skewed."""
    length = rng.randint(6, 16)
    if good is None or bad is None:
        return " ".join(rng.choices(WORDS, k=length))
    out = []
    for _ in range(length):
        u = rng.random()
        pool = GOOD if u < good else BAD if u < good + bad else NEUTRAL
        out.append(rng.choice(pool))
    return " ".join(out)


def gold_preference_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """TRL-format preference rows labelled by the gold rule (the reward model's training
    data), with answers of varied good/bad mixes so the proxy covers where a policy moves."""
    return _labelled_rows(n, seed, answer=_skewed, score=gold_score)


def _skewed(rng: random.Random) -> str:
    good = rng.random() * 0.7
    bad = rng.random() * (0.9 - good)
    return random_answer(rng, good=good, bad=bad)


def length_biased_rows(
    n: int, seed: int, *, length_bonus: float = 0.05, noise: float = 0.1
) -> list[dict[str, Any]]:
    """TRL-format preference rows of the nature-length task: each label follows
    ``nature_score + length_bonus · words`` (annotators who also like long answers), and a
    share ``noise`` of the labels is flipped. Answers of 2–24 words with varied nature/town
    mixes, so the proxy learns the length bias over the whole range a policy can reach."""
    return _labelled_rows(
        n,
        seed,
        answer=_nature_skewed,
        score=lambda text: nature_score(text) + length_bonus * len(text.split()),
        noise=noise,
    )


def _nature_skewed(rng: random.Random) -> str:
    nature = rng.random() * 0.7
    town = rng.random() * (0.9 - nature)
    words = []
    for _ in range(rng.randint(2, 24)):
        u = rng.random()
        pool = NATURE if u < nature else TOWN if u < nature + town else OTHER
        words.append(rng.choice(pool))
    return " ".join(words)


def _labelled_rows(
    n: int,
    seed: int,
    *,
    answer: Callable[[random.Random], str],
    score: Callable[[str], float],
    noise: float = 0.0,
) -> list[dict[str, Any]]:
    """``n`` rows of two answers to one prompt, the higher ``score`` chosen (pairs that tie
    are drawn again), a share ``noise`` of the labels flipped."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        prompt = prompt_messages(rng)
        a, b = answer(rng), answer(rng)
        sa, sb = score(a), score(b)
        if sa == sb:
            continue
        flipped = noise > 0 and rng.random() < noise
        chosen, rejected = (a, b) if (sa > sb) != flipped else (b, a)
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    return rows


@dataclass(frozen=True)
class GoldTask:
    """A synthetic task: its gold rule and the labelled rows its reward model learns from."""

    name: str
    gold: Callable[[str], float]
    preference_rows: Callable[[int, int], list[dict[str, Any]]]
    description: str


TASKS: dict[str, GoldTask] = {
    task.name: task
    for task in (
        GoldTask(
            "gold-words",
            gold_score,
            gold_preference_rows,
            "mean word value (good +1, bad −1); labels follow the rule exactly",
        ),
        GoldTask(
            "nature-length",
            nature_score,
            length_biased_rows,
            "mean word value (nature +1, town −1); labels add +0.05 a word and flip 10 %",
        ),
    )
}


@dataclass(frozen=True)
class PolicyShape:
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    pretrain_steps: int = 300
    batch_size: int = 64
    learning_rate: float = 3e-3


def build_synthetic_policy(out: Path, *, shape: PolicyShape | None = None, seed: int = 0) -> Path:
    """Tokenizer (each word one token) and a tiny Llama pre-trained to answer the task's
    prompts with uniformly random words, ended by the chat template's end-of-turn token.
    Saved with ``save_pretrained``: loads like any real model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.ml.tiny import build_causal_lm, build_tokenizer

    shape = shape or PolicyShape()
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    corpus = [" ".join(WORDS)] * 50 + [" ".join(TOPICS)] * 50
    corpus += [prompt_messages(rng)[0]["content"] + " " + random_answer(rng) for _ in range(500)]
    tok_dir = build_tokenizer(corpus, out / "tokenizer", vocab_size=700)
    build_causal_lm(
        tok_dir, out, hidden=shape.hidden, layers=shape.layers, heads=shape.heads, seed=seed
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=shape.learning_rate)
    model.train()
    for step in range(shape.pretrain_steps):
        texts, prompt_lengths = [], []
        for _ in range(shape.batch_size):
            messages = prompt_messages(rng)
            head = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            full = tokenizer.apply_chat_template(
                [*messages, {"role": "assistant", "content": random_answer(rng)}], tokenize=False
            )
            texts.append(full)
            prompt_lengths.append(len(tokenizer(head)["input_ids"]))
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = -100
        for i, n in enumerate(prompt_lengths):
            labels[i, :n] = -100  # learn the answers, not the prompts
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        for group in optimizer.param_groups:
            group["lr"] = shape.learning_rate * (1 - step / shape.pretrain_steps)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "preflab_synthetic.json").write_text(
        json.dumps(
            {"task": "gold-words", "seed": seed, "final_loss": round(float(loss.detach()), 4)}
        )
    )
    return out
