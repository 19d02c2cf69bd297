"""The command-line flags of OpenRLHF's ``openrlhf/cli/train_ppo_ray.py`` that Preflab's
``openrlhf`` launcher emits, with their types and actions as OpenRLHF's argparse declares
them at commit 021d1b09641902f7f06dc42331c75b37793ca950 (read from the source; every one is
declared the same way at f5b3f08a05fd6cbd9a5b712ed931bbb72c24f2c4). OpenRLHF needs CUDA and
is not installed in tests: an argv that parses here (no abbreviations, no unknown flag, each
value of the declared type) is one OpenRLHF's parser accepts.

Used by the tests and, as a script's neighbour, by ``openrlhf_stand_in.py``."""

from __future__ import annotations

import argparse

STRINGS = (
    "pretrain",
    "reward_pretrain",
    "remote_rm_url",
    "critic_pretrain",
    "save_path",
    "prompt_data",
    "input_key",
    "ckpt_path",
)
INTS = (
    "actor_num_nodes",
    "actor_num_gpus_per_node",
    "ref_num_nodes",
    "ref_num_gpus_per_node",
    "critic_num_nodes",
    "critic_num_gpus_per_node",
    "vllm_num_engines",
    "vllm_tensor_parallel_size",
    "zero_stage",
    "num_episodes",
    "max_samples",
    "n_samples_per_prompt",
    "rollout_batch_size",
    "micro_rollout_batch_size",
    "train_batch_size",
    "micro_train_batch_size",
    "max_epochs",
    "prompt_max_len",
    "generate_max_len",
    "seed",
    "freezing_actor_steps",
    "lora_rank",
    "kl_horizon",
    "save_steps",
)
FLOATS = (
    "temperature",
    "top_p",
    "actor_learning_rate",
    "critic_learning_rate",
    "max_norm",
    "eps_clip",
    "value_clip",
    "gamma",
    "lambd",
    "init_kl_coef",
    "kl_target",
)
SWITCHES = (
    "apply_chat_template",
    "colocate_all_models",
    "adam_offload",
    "bf16",
    "gradient_checkpointing",
    "normalize_reward",
    "load_checkpoint",
)


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="train_ppo_ray", allow_abbrev=False, exit_on_error=False)
    for name in STRINGS:
        parse.add_argument(f"--{name}", type=str)
    for name in INTS:
        parse.add_argument(f"--{name}", type=int)
    for name in FLOATS:
        parse.add_argument(f"--{name}", type=float)
    for name in SWITCHES:
        parse.add_argument(f"--{name}", action="store_true", default=False)
    parse.add_argument("--reward_clip_range", type=float, nargs=2, default=(-10, 10))
    parse.add_argument("--kl_estimator", type=str, default="k1", choices=["k1", "k2", "k3"])
    parse.add_argument(
        "--advantage_estimator",
        type=str,
        default="gae",
        choices=["gae", "reinforce", "rloo", "reinforce_baseline", "group_norm", "dr_grpo"],
    )
    return parse


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse as OpenRLHF would; ``argparse.ArgumentError`` / SystemExit on a bad argv, and
    OpenRLHF's own check that every actor process gets a rollout batch."""
    args = parser().parse_args(argv)
    world = args.actor_num_nodes * args.actor_num_gpus_per_node
    batches = args.n_samples_per_prompt * args.rollout_batch_size // args.micro_rollout_batch_size
    if batches < world:
        raise ValueError("fewer rollout batches than actor processes")
    return args
