"""vLLM where installed: the checks of a config that asks for it, and the mapping of our sampling
settings onto vLLM's and TRL's (pure functions; vLLM itself is not installed here, so its
sampling path is not run by these tests)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from training.ml.config import ConfigError
from training.ml.generation import (
    SamplingConfig,
    generate_candidates,
    parse_sampling_config,
    resolve_backend,
    vllm_available,
)
from training.ml.policy_trl import parse_grpo_config, parse_rloo_config, train_grpo
from training.ml.vllm_support import (
    VllmHost,
    engine_kwargs,
    sampled_sequence,
    sampling_params_kwargs,
    trl_vllm_args,
    use_vllm,
)

NOTHING = VllmHost(installed=False, cuda=False)
NO_CUDA = VllmHost(installed=True, cuda=False)
NO_PACKAGE = VllmHost(installed=False, cuda=True)
GPU_HOST = VllmHost(installed=True, cuda=True)
needs_no_vllm = pytest.mark.skipif(vllm_available(), reason="vLLM runs on this host")


def test_use_vllm_true_names_what_the_host_lacks() -> None:
    with pytest.raises(ConfigError) as caught:
        use_vllm(True, NOTHING)
    message = caught.value.fields["use_vllm"]
    assert "vllm package" in message and "CUDA device" in message
    with pytest.raises(ConfigError, match="CUDA device") as caught:
        use_vllm(True, NO_CUDA)
    assert "vllm package" not in caught.value.fields["use_vllm"]
    with pytest.raises(ConfigError, match="vllm package") as caught:
        use_vllm(True, NO_PACKAGE, field="backend")
    assert set(caught.value.fields) == {"backend"}
    with pytest.raises(ConfigError, match="CPU device was asked for"):
        use_vllm(True, GPU_HOST, cpu_requested=True)
    assert use_vllm(True, GPU_HOST) is True


def test_use_vllm_auto_and_false_never_fail() -> None:
    assert use_vllm("auto", GPU_HOST) is True
    assert use_vllm("auto", GPU_HOST, cpu_requested=True) is False
    for host in (NOTHING, NO_CUDA, NO_PACKAGE):
        assert use_vllm("auto", host) is False
    for host in (NOTHING, GPU_HOST):
        assert use_vllm(False, host) is False
    with pytest.raises(ConfigError, match='true, false or "auto"'):
        use_vllm("yes", GPU_HOST)


def test_sampling_settings_map_onto_vllm_sampling_params() -> None:
    config = SamplingConfig(n=4, temperature=0.9, top_p=0.95, max_new_tokens=48, seed=7)
    kwargs = sampling_params_kwargs(
        n=config.n,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        stop_token_ids=(2, 5),
    )
    assert kwargs == {
        "n": 4,
        "temperature": 0.9,
        "top_p": 0.95,
        "top_k": -1,  # no top-k cut, as top_k=0 on the transformers path
        "max_tokens": 48,
        "seed": 7,
        "stop_token_ids": [2, 5],
        "skip_special_tokens": True,
    }
    assert engine_kwargs(Path("/models/p"), seed=3) == {
        "model": "/models/p",
        "tokenizer": "/models/p",
        "seed": 3,
        "dtype": "auto",
    }


def test_a_vllm_completion_is_cut_at_its_stop_token() -> None:
    stops = {2, 5}
    finished = sampled_sequence([11, 12, 5], "stop", stops)
    assert finished.token_ids == (11, 12) and finished.finished
    assert sampled_sequence([11, 12], "stop", stops).token_ids == (11, 12)  # stop not kept
    cut = sampled_sequence([11, 12, 13], "length", stops)
    assert cut.token_ids == (11, 12, 13) and not cut.finished


def test_use_vllm_in_a_sampling_config_reads_as_the_backend() -> None:
    assert parse_sampling_config({"use_vllm": True}).backend == "vllm"
    assert parse_sampling_config({"use_vllm": False}).backend == "transformers"
    assert parse_sampling_config({"use_vllm": "auto"}).backend == "auto"
    assert parse_sampling_config({"use_vllm": True, "backend": "vllm"}).backend == "vllm"
    assert "use_vllm" not in dataclasses.asdict(parse_sampling_config({"use_vllm": True}))
    with pytest.raises(ConfigError) as caught:
        parse_sampling_config({"use_vllm": True, "backend": "transformers"})
    assert set(caught.value.fields) == {"use_vllm", "backend"}
    with pytest.raises(ConfigError) as caught:  # every problem at once
        parse_sampling_config({"use_vllm": "yes", "n": 0})
    assert set(caught.value.fields) == {"use_vllm", "n"}
    with pytest.raises(ConfigError, match="use_vllm"):
        parse_sampling_config({"use_vllm": 1})


@needs_no_vllm
def test_asking_for_vllm_here_is_a_config_error_before_anything_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_backend("vllm")
    assert "vllm package" in caught.value.fields["backend"]
    assert resolve_backend("auto") == "transformers"
    # no policy directory: the backend is checked before the tokenizer or model is loaded
    with pytest.raises(ConfigError, match="vllm package"):
        generate_candidates(tmp_path / "missing", ["hi"], parse_sampling_config({"use_vllm": True}))


def test_trl_vllm_arguments_are_grpo_and_rloo_config_fields() -> None:
    from trl import GRPOConfig, RLOOConfig

    args = trl_vllm_args(
        use=True, mode="colocate", gpu_memory_utilization=0.25, stop_token_ids=[2, 9]
    )
    assert args == {
        "use_vllm": True,
        "vllm_mode": "colocate",
        "vllm_gpu_memory_utilization": 0.25,
        "generation_kwargs": {"stop_token_ids": [2, 9]},
    }
    for config_class in (GRPOConfig, RLOOConfig):
        names = {f.name for f in dataclasses.fields(config_class)}
        assert set(args) <= names, set(args) - names
    off = trl_vllm_args(use=False, mode="colocate", gpu_memory_utilization=0.3, stop_token_ids=[2])
    assert off == {"use_vllm": False}


def test_grpo_and_rloo_configs_validate_their_vllm_fields() -> None:
    for parse in (parse_grpo_config, parse_rloo_config):
        config = parse({"use_vllm": True, "vllm_gpu_memory_utilization": 0.5})
        assert config.use_vllm and config.vllm_mode == "colocate"
        assert parse({}).use_vllm is False
        with pytest.raises(ConfigError) as caught:
            parse({"use_vllm": "auto", "vllm_mode": "server", "vllm_gpu_memory_utilization": 2})
        assert set(caught.value.fields) == {
            "use_vllm",
            "vllm_mode",
            "vllm_gpu_memory_utilization",
        }


@needs_no_vllm
def test_grpo_with_use_vllm_fails_with_a_config_error_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        train_grpo(
            policy=tmp_path / "no-policy",
            reward=tmp_path / "no-reward",
            prompts_file=tmp_path / "no-prompts.jsonl",
            out=tmp_path / "out",
            config=parse_grpo_config({"use_vllm": True}),
        )
    assert set(caught.value.fields) == {"use_vllm"}
    assert "vllm package" in caught.value.fields["use_vllm"]
    assert not (tmp_path / "out").exists()
