"""Stands in for ``python3 -m openrlhf.cli.train_ppo_ray`` (which needs CUDA) in the Ray job
test: it parses its argv with OpenRLHF's flags (``openrlhf_flags.py``), posts a query to
``--remote_rm_url`` as OpenRLHF's remote reward client does and checks one float comes back
per query, then saves the starting policy as the "trained" one in ``--save_path``.
Run as a script (its folder is then on ``sys.path``)."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.request

import openrlhf_flags


def main() -> int:
    args = openrlhf_flags.parse(sys.argv[1:])
    body = json.dumps({"query": ["the cat sat", "on the mat"], "prompts": ["the", "on"]})
    request = urllib.request.Request(  # noqa: S310 - the reward server's http URL
        args.remote_rm_url,
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - our server
        rewards = json.loads(answer.read())["rewards"]
    assert len(rewards) == 2 and all(isinstance(r, float) for r in rewards), rewards
    print(f"stand-in: rewards {rewards} from {args.remote_rm_url}", flush=True)
    shutil.copytree(args.pretrain, args.save_path, dirs_exist_ok=True)
    print(f"stand-in: saved {args.save_path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
