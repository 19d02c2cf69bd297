"""What a valid generation request is: checked before any model work — by a run's API when
the run is queued (a bad request is a 4xx at once) and again by
:func:`training.generation.generate_batch` before it generates."""

from __future__ import annotations

from dataclasses import asdict

from annotation.models import Project, Prompt
from training.generation_errors import (
    ArtifactFilesMissing,
    ArtifactOfAnotherProject,
    ComparePolicyRequired,
    InvalidGeneration,
    InvalidSamplingConfig,
    NoPrompts,
    PromptOfAnotherProject,
    RewardModelRequired,
    WrongArtifactKind,
)
from training.generation_pairing import NEEDS_REWARD, Pairing
from training.ml.config import ConfigError
from training.ml.generation import SamplingConfig, parse_sampling_config
from training.models import ArtifactKind, ModelArtifact
from training.registry import artifact_dir

MAX_PAIRS_PER_PROMPT = 100


def check_generation_request(
    *,
    project: Project,
    policy: ModelArtifact,
    prompts: list[Prompt],
    sampling: SamplingConfig,
    pairing: Pairing | str,
    pairs_per_prompt: int = 1,
    compare_policy: ModelArtifact | None = None,
    reward: ModelArtifact | None = None,
    round_number: int | None = None,
    batch_name: str = "",
) -> tuple[Pairing, SamplingConfig, list[Prompt]]:
    """Validate a generation request without doing any model work (a run's API calls this
    when the run is queued; :func:`training.generation.generate_batch` again before it
    generates). Returns the
    pairing, the re-validated sampling config and the prompts without repeats; raises an
    :class:`InvalidGeneration` subclass naming the bad field. Whether the sampling backend
    is installed is checked only where the generation runs."""
    try:
        pairing = Pairing(pairing)
    except ValueError:
        raise InvalidGeneration(
            f"pairing must be one of {[p.value for p in Pairing]}.", field_name="pairing"
        ) from None
    try:
        sampling = parse_sampling_config(asdict(sampling))
    except ConfigError as exc:
        raise InvalidSamplingConfig(str(exc), extra={"fields": exc.fields}) from None
    if (
        not isinstance(pairs_per_prompt, int)
        or isinstance(pairs_per_prompt, bool)
        or not 1 <= pairs_per_prompt <= MAX_PAIRS_PER_PROMPT
    ):
        raise InvalidGeneration(
            f"pairs_per_prompt must be 1–{MAX_PAIRS_PER_PROMPT}.", field_name="pairs_per_prompt"
        )
    if pairing is not Pairing.NEW_VS_PREVIOUS and sampling.n < 2:
        raise InvalidGeneration(
            f"{pairing.value} pairs a policy's own candidates: sample n ≥ 2.", field_name="n"
        )
    if round_number is not None and (
        not isinstance(round_number, int) or isinstance(round_number, bool) or round_number < 0
    ):
        raise InvalidGeneration("round_number must be an integer ≥ 0.", field_name="round_number")
    if not isinstance(batch_name, str) or len(batch_name) > 200:
        raise InvalidGeneration(
            "batch_name must be a string of at most 200 characters.", field_name="batch_name"
        )
    unique = list({p.pk: p for p in prompts}.values())
    if not unique:
        raise NoPrompts("Give at least one prompt.", field_name="prompts")
    foreign = [p.pk for p in unique if p.project_id != project.id]
    if foreign:
        raise PromptOfAnotherProject(
            f"{len(foreign)} prompt(s) belong to another project.",
            field_name="prompts",
            extra={"prompt_ids": foreign[:20]},
        )
    if pairing is Pairing.NEW_VS_PREVIOUS:
        if compare_policy is None:
            raise ComparePolicyRequired(
                "new_vs_previous needs compare_policy: the previous policy.",
                field_name="compare_policy",
            )
        if compare_policy.pk == policy.pk:
            raise InvalidGeneration(
                "compare_policy must differ from the policy.", field_name="compare_policy"
            )
    elif compare_policy is not None:
        raise InvalidGeneration(
            "compare_policy is used only by new_vs_previous pairing.", field_name="compare_policy"
        )
    if pairing in NEEDS_REWARD and reward is None:
        raise RewardModelRequired(
            f"{pairing.value} ranks candidates by a reward model: give reward.",
            field_name="reward",
        )
    checks = [("policy", policy, ArtifactKind.POLICY), ("reward", reward, ArtifactKind.REWARD)]
    if pairing is Pairing.NEW_VS_PREVIOUS:
        checks.append(("compare_policy", compare_policy, ArtifactKind.POLICY))
    for name, artifact, kind in checks:
        if artifact is None:
            continue
        if artifact.kind != kind:
            raise WrongArtifactKind(
                f"{name} must be a {kind} artifact, not {artifact.kind}.", field_name=name
            )
        if artifact.project_id not in (None, project.id):
            raise ArtifactOfAnotherProject(f"{name} belongs to another project.", field_name=name)
        if not artifact_dir(artifact).is_dir():
            raise ArtifactFilesMissing(
                f"{name}'s files are missing from the artifact store.", field_name=name
            )
    return pairing, sampling, unique
