"""An RLHF round's configuration: which algorithm, which feedback, and each step's settings,
validated with the same checks as the runs it will start (a bad round is a 400 at once).

Defaults come in two layers: the built-in ones, and a project's own (:class:`RoundDefaults`:
settings that fit its data and models, and the policy its first round starts from) laid
over them key by key. A round's config fills what it leaves out from both."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db import transaction

from annotation.export_options import InvalidExportOptions, parse_export_options
from annotation.models import Project
from training.ml.generation import parse_sampling_config
from training.ml.reward import parse_config as parse_reward_config
from training.models import ArtifactKind, ModelArtifact, RoundDefaults, RunKind
from training.policy_runs import PARSERS
from training.round_gates import GateConfig, parse_gates
from training.run_inputs import (
    InvalidRunConfig,
    launch_settings,
    parsed_config,
    project_artifact,
    run_prompts,
)

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
LAUNCH_OPTIONS = ("launcher", "launcher_options")  # of the reward and policy sections
WINDOW = ("judged_after", "judged_before")  # set by the round, not by its config


def builtin_round_config() -> dict[str, Any]:
    """The defaults of every project (each step's own defaults fill its empty section)."""
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


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``: nested objects key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def default_round_config(project: Project | None = None) -> dict[str, Any]:
    """What the console's form starts from: the built-in defaults with the project's own
    laid over them."""
    config = builtin_round_config()
    if project is None:
        return config
    stored = RoundDefaults.objects.filter(project=project).values_list("config", flat=True)
    return merged(config, stored.first() or {})


def _bad(field: str, message: str) -> InvalidRunConfig:
    return InvalidRunConfig(f"{field}: {message}", extra={"fields": {field: message}})


def _known_options(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _bad("config", "must be a JSON object")
    unknown = sorted(set(raw) - set(ROUND_OPTIONS))
    if unknown:
        raise InvalidRunConfig(
            f"Unknown option(s): {', '.join(unknown)}.",
            extra={"fields": dict.fromkeys(unknown, "unknown option")},
        )
    return raw


def parse_round_config(project: Project, raw: Any) -> dict[str, Any]:
    """Validate (the project's defaults filled in) and return the config as stored on the
    round."""
    return _validated(project, merged(default_round_config(project), _known_options(raw)))


def check_round_defaults(
    *, project: Project, config: Any, base_policy_id: int | None = None
) -> ModelArtifact | None:
    """Check round defaults as a round over the built-in defaults would be checked (and the
    base policy as a round's); returns the base policy."""
    _validated(project, merged(builtin_round_config(), _known_options(config)))
    if base_policy_id is None:
        return None
    return project_artifact(
        project, base_policy_id, field="base_policy", kinds=[ArtifactKind.POLICY]
    )


@transaction.atomic
def set_round_defaults(
    *, project: Project, config: Any, base_policy_id: int | None = None
) -> RoundDefaults:
    """Store the project's round defaults, once :func:`check_round_defaults` accepts them."""
    base = check_round_defaults(project=project, config=config, base_policy_id=base_policy_id)
    defaults, _ = RoundDefaults.objects.update_or_create(
        project=project, defaults={"config": config, "base_policy": base}
    )
    return defaults


def _split_launch(
    section: str, raw: dict[str, Any], kind: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A step's section without its ``launcher`` / ``launcher_options``, and those (checked
    as a run's; empty when the section names none: the server's default then applies)."""
    config = {k: v for k, v in raw.items() if k not in LAUNCH_OPTIONS}
    if not any(k in raw for k in LAUNCH_OPTIONS):
        return config, {}
    try:
        launch = launch_settings(raw.get("launcher"), raw.get("launcher_options"), kind=kind)
    except InvalidRunConfig as exc:
        raise InvalidRunConfig(
            f"{section}: {exc.message}", extra={"fields": {section: exc.extra.get("fields")}}
        ) from None
    return config, launch


def step_run_settings(section: dict[str, Any]) -> dict[str, Any]:
    """A stored step section as the run-creation arguments: ``config`` and, when the round
    names one, ``launcher`` and ``launcher_options``."""
    config = {k: v for k, v in section.items() if k not in LAUNCH_OPTIONS}
    return {"config": config} | {k: section[k] for k in LAUNCH_OPTIONS if k in section}


def _validated(project: Project, config: dict[str, Any]) -> dict[str, Any]:
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
    reward_config, reward_launch = _split_launch("reward", config["reward"], RunKind.REWARD)
    policy_config, policy_launch = _split_launch("policy", config["policy"], algorithm)
    reward = asdict(parsed_config(parse_reward_config, reward_config)) | reward_launch
    policy = asdict(parsed_config(PARSERS[algorithm], policy_config)) | policy_launch
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
