"""Loading a model directory's tokenizer the same way in every training path.

Base tokenizers of the Llama and Mistral families have no pad token. Every path pads
(batched generation, PPO rollouts, reward scoring), so a missing pad token becomes the EOS
token, as TRL's trainers do: a reward model trained by TRL on such a tokenizer reads its
score at the last token that is not EOS, and scoring must pad with the same token to read
it at the same place. ``trust_remote_code`` stays off: a directory's own code never runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class TokenizerError(ValueError):
    """The tokenizer cannot be used for training (no pad token and no EOS token)."""


def ensure_pad_token(tokenizer: Any) -> Any:
    """The tokenizer with a pad token: its own, or its EOS token when it has none."""
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise TokenizerError("the tokenizer has neither a pad token nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(path: Path | str, **kwargs: Any) -> Any:
    """``AutoTokenizer.from_pretrained(path)`` with a pad token (see the module's note)."""
    from transformers import AutoTokenizer

    return ensure_pad_token(AutoTokenizer.from_pretrained(path, trust_remote_code=False, **kwargs))
