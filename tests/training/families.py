"""Tokenizers and tiny models shaped like the model families teams bring, built locally.

Each family reproduces the traits that decide which ids a reward model reads:

- ``llama3``: the post-processor adds ``<|begin_of_text|>`` to plain text, the chat template
  writes its own ``<|begin_of_text|>``, turns end with ``<|eot_id|>``, EOS is
  ``<|end_of_text|>`` and there is **no pad token**;
- ``qwen2``: no BOS at all, turns end with ``<|im_end|>`` followed by a newline, EOS is
  ``<|im_end|>`` and the pad token ``<|endoftext|>``;
- ``gemma``: the post-processor adds ``<bos>`` and the template writes it too, turns are
  ``<start_of_turn>`` … ``<end_of_turn>`` + newline, the assistant's role is ``model``.

Models are random-initialised ``LlamaConfig`` / ``Qwen2Config`` / ``GemmaConfig`` at tiny
sizes, saved and reloaded through ``from_pretrained`` like any checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WORDS = (
    "the a cat dog sat on mat red blue green fast slow happy sad sun moon tree river "
    "thanks please yes no maybe good bad answer question what why how when where who"
).split()


@dataclass(frozen=True)
class Family:
    name: str
    specials: tuple[str, ...]
    bos: str | None  # added to plain text by the post-processor
    eos: str
    pad: str | None
    chat_template: str


LLAMA3 = Family(
    name="llama3",
    specials=(
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
    ),
    bos="<|begin_of_text|>",
    eos="<|end_of_text|>",
    pad=None,
    chat_template=(
        "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
        "<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n"
        "{% endif %}"
    ),
)
QWEN2 = Family(
    name="qwen2",
    specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    bos=None,
    eos="<|im_end|>",
    pad="<|endoftext|>",
    chat_template=(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
)
GEMMA = Family(
    name="gemma",
    specials=("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
    bos="<bos>",
    eos="<eos>",
    pad="<pad>",
    chat_template=(
        "{{ bos_token }}{% for m in messages %}<start_of_turn>"
        "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
        "{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    ),
)
FAMILIES = {f.name: f for f in (LLAMA3, QWEN2, GEMMA)}


def corpus(n: int = 400) -> list[str]:
    import random

    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]


def build_family_tokenizer(family: Family, out: Path) -> Path:
    """A byte-level BPE tokenizer with the family's special tokens and template traits."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(family.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    if family.bos is not None:
        bos_id = tokenizer.token_to_id(family.bos)
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{family.bos} $A",
            pair=f"{family.bos} $A {family.bos} $B",
            special_tokens=[(family.bos, bos_id)],
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=family.bos,
        eos_token=family.eos,
        pad_token=family.pad,
    )
    fast.chat_template = family.chat_template
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return out


def build_family_model(family: Family, out: Path, *, seed: int = 0) -> Path:
    """A random-initialised causal LM of the family's architecture, saved with its tokenizer."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GemmaConfig,
        LlamaConfig,
        Qwen2Config,
    )

    build_family_tokenizer(family, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    shape = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = {
        "llama3": lambda: LlamaConfig(**shape),
        "qwen2": lambda: Qwen2Config(**shape),
        "gemma": lambda: GemmaConfig(**shape, head_dim=8),
    }[family.name]()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    return out
