"""An RLHF round's configuration: which algorithm, which feedback, and each step's settings,
validated with the same checks as the runs it will start (a bad round is a 400 at once)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from annotation.export_options import InvalidExportOptions, parse_export_options
from annotation.models import Project
from training.ml.generation import parse_sampling_config
from training.ml.reward import parse_config as parse_reward_config
from training.models import RunKind
from training.policy_runs import PARSERS
from training.round_gates import GateConfig, parse_gates
from training.run_inputs import InvalidRunConfig, parsed_config, run_prompts

ALGORITHMS = (RunKind.PPO, RunKind.GRPO, RunKind.RLOO, RunKind.DPO)
ROUND_OPTIONS = (
    "algorithm",
    "accumulate",
    "min_judgments",
    "export",
    "reward",
    "policy",
    "generation",
    "prompt_ids",
    "gates",
)
GENERATION_OPTIONS = ("sampling", "pairs_per_prompt")
WINDOW = ("judged_after", "judged_before")  # set by the round, not by its config


def default_round_config() -> dict[str, Any]:
    """What the console's form starts from."""
    return {
        "algorithm": RunKind.PPO.value,
        "accumulate": False,
        "min_judgments": 1,
        "export": {"test_fraction": 0.1},
        "reward": {},
        "policy": {},
        "generation": {"sampling": {"n": 1, "max_new_tokens": 64}, "pairs_per_prompt": 1},
        "prompt_ids": [],
        "gates": asdict(GateConfig()),
    }


def _bad(field: str, message: str) -> InvalidRunConfig:
    return InvalidRunConfig(f"{field}: {message}", extra={"fields": {field: message}})


def parse_round_config(project: Project, raw: Any) -> dict[str, Any]:
    """Validate (defaults filled in) and return the config as stored on the round."""
    if not isinstance(raw, dict):
        raise _bad("config", "must be a JSON object")
    unknown = sorted(set(raw) - set(ROUND_OPTIONS))
    if unknown:
        raise InvalidRunConfig(
            f"Unknown option(s): {', '.join(unknown)}.",
            extra={"fields": dict.fromkeys(unknown, "unknown option")},
        )
    config = default_round_config() | raw
    algorithm = config["algorithm"]
    if algorithm not in ALGORITHMS:
        raise _bad("algorithm", f"must be one of {', '.join(ALGORITHMS)}")
    if not isinstance(config["accumulate"], bool):
        raise _bad("accumulate", "must be true or false")
    minimum = config["min_judgments"]
    if not isinstance(minimum, int) or isinstance(minimum, bool) or not 0 <= minimum <= 10**9:
        raise _bad("min_judgments", "must be an integer in 0 … 10^9")
    for section in ("export", "reward", "policy", "generation"):
        if not isinstance(config[section], dict):
            raise _bad(section, "must be a JSON object")
    window = sorted(set(config["export"]) & set(WINDOW))
    if window:
        raise _bad("export", f"{', '.join(window)} is set by the round (see accumulate)")
    try:
        parse_export_options(dict(config["export"]))
    except InvalidExportOptions as exc:
        raise InvalidRunConfig(
            f"export: {exc.message}", extra={"fields": {"export": exc.extra}}
        ) from None
    reward = asdict(parsed_config(parse_reward_config, config["reward"]))
    policy = asdict(parsed_config(PARSERS[algorithm], config["policy"]))
    generation = config["generation"]
    unknown = sorted(set(generation) - set(GENERATION_OPTIONS))
    if unknown:
        raise _bad("generation", f"unknown option(s) {', '.join(unknown)}")
    sampling = asdict(parsed_config(parse_sampling_config, generation.get("sampling", {})))
    pairs = generation.get("pairs_per_prompt", 1)
    if not isinstance(pairs, int) or isinstance(pairs, bool) or not 1 <= pairs <= 100:
        raise _bad("generation", "pairs_per_prompt must be an integer in 1–100")
    if not isinstance(config["gates"], dict):
        raise _bad("gates", "must be a JSON object")
    gates = asdict(parsed_config(parse_gates, config["gates"]))
    return {
        "algorithm": algorithm,
        "accumulate": config["accumulate"],
        "min_judgments": minimum,
        "export": config["export"],
        "reward": reward,
        "policy": policy,
        "generation": {"sampling": sampling, "pairs_per_prompt": pairs},
        "prompt_ids": run_prompts(project, config["prompt_ids"]) if config["prompt_ids"] else [],
        "gates": gates,
    }
