"""The typed errors of generation (each a 4xx with a stable code; ``extra["fields"]`` names
the bad field of a request)."""

from __future__ import annotations

from typing import Any

from preflab.errors import ConflictError, InvalidInputError


class InvalidGeneration(InvalidInputError):
    """A generation request that cannot run; ``extra["fields"]`` names what is wrong."""

    code = "invalid_generation"

    def __init__(
        self, message: str, *, field_name: str = "", extra: dict[str, Any] | None = None
    ) -> None:
        fields = {field_name: message} if field_name else {}
        super().__init__(message, extra={"fields": fields} | (extra or {}))


class InvalidSamplingConfig(InvalidGeneration):
    code = "invalid_config"


class NoPrompts(InvalidGeneration):
    code = "no_prompts"


class PromptOfAnotherProject(InvalidGeneration):
    code = "prompt_of_another_project"


class RewardModelRequired(InvalidGeneration):
    code = "reward_model_required"


class ComparePolicyRequired(InvalidGeneration):
    code = "compare_policy_required"


class WrongArtifactKind(InvalidGeneration):
    code = "wrong_artifact_kind"


class ArtifactOfAnotherProject(InvalidGeneration):
    code = "artifact_of_another_project"


class ArtifactFilesMissing(InvalidGeneration):
    code = "artifact_files_missing"


class SamplesDegenerate(InvalidGeneration):
    """The new policy's samples failed a sample gate; ``extra["gates"]`` says which."""

    code = "samples_degenerate"


class NothingToCompare(InvalidGeneration):
    """Every prompt's candidates were identical (or every pair already exists)."""

    code = "nothing_to_compare"


class PromptsChanged(ConflictError):
    """A prompt was deleted while its candidates were being generated."""

    code = "prompts_changed"
