"""Serve a Preflab reward model (or ensemble) over HTTP, in the protocol of OpenRLHF's remote
reward option, so that a PPO run outside Preflab (OpenRLHF's Ray PPO on a cluster) optimises
the reward model the annotators' judgments trained — scored as it was trained.

    python -m training.ml.reward_server --reward DIR [--host 127.0.0.1] [--port 5000] \\
        [--max-length 2048] [--ensemble-lambda 1.0] [--batch-size 16]

and in OpenRLHF: ``--remote_rm_url http://HOST:5000/get_reward``.

The protocol, as OpenRLHF's ``openrlhf/utils/remote_rm_utils.py`` defines it: a ``POST`` of
``{"query": [...], "prompts": [...], "labels": [...]}`` — each query is a whole sequence
(prompt and response) decoded with its special tokens (left padding included), each prompt
the prompt text as given to the policy (through the chat template when the run applies it)
— answered with ``{"rewards": [...]}`` (and ``scores``, the same values, and ``extra_logs``),
one float per query. ``labels`` are accepted and ignored: a learned reward model has none.

Each query becomes the ids the reward model read in training
(:mod:`training.ml.reward_input`): padding is stripped, the stop tokens that ended the
response are replaced by the training form's ending — the chat template's end of turn when
the prompt ends with the template's generation prompt, else EOS — and a plain-text exchange
gets the BOS its tokenizer's post-processor adds. An ensemble answers its conservative score
(mean − λ·std of the standardized members). ``GET /health`` answers ``{"status": "ok"}``.
Plain Python (the standard library's HTTP server): no Django, no web framework.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from training.ml.prompts import stop_token_ids
from training.ml.reward_input import turn_end_ids

MAX_BODY = 64 * 1024 * 1024  # bytes of one request
MAX_QUERIES = 4096  # per request


class BadRequest(ValueError):
    """A request that does not follow the protocol; the message says how."""


@dataclass(frozen=True)
class Rewards:
    rewards: list[float]
    truncated: int

    def as_json(self) -> dict[str, Any]:
        return {
            "rewards": self.rewards,
            "scores": self.rewards,
            "extra_logs": {"reward_truncated": [float(self.truncated)] * len(self.rewards)},
        }


class RewardService:
    """A loaded reward artifact that scores OpenRLHF's decoded queries."""

    def __init__(
        self,
        reward_dir: Path,
        *,
        max_length: int = 2048,
        ensemble_lambda: float = 1.0,
        batch_size: int = 16,
        device: str | None = None,
    ) -> None:
        from training.ml.scoring import RewardScorer

        self.scorer = RewardScorer(reward_dir, device=device, max_length=max_length)
        self.ensemble_lambda = ensemble_lambda
        self.batch_size = batch_size
        self.lock = threading.Lock()  # one forward pass at a time on the device
        tokenizer = self.scorer.tokenizer
        self.stops = set(stop_token_ids(tokenizer))
        self.pad = tokenizer.pad_token_id
        self.eos = tokenizer.eos_token_id
        self.turn_end = turn_end_ids(tokenizer)
        self.generation_prompt = _generation_prompt(tokenizer)
        plain = tokenizer(text="a")["input_ids"]
        bos = tokenizer.bos_token_id
        self.plain_bos = bos if bos is not None and plain and plain[0] == bos else None

    def query_ids(self, query: str, prompt: str | None) -> list[int]:
        """The training form of one decoded query (see the module's note)."""
        ids = list(self.scorer.tokenizer(text=query, add_special_tokens=False)["input_ids"])
        while ids and ids[0] == self.pad and ids[0] != self.plain_bos:
            ids.pop(0)  # left padding
        while ids and (ids[-1] == self.pad or ids[-1] in self.stops):
            ids.pop()  # right padding and the stop token(s) that ended the response
        conversational = (
            prompt is not None
            and self.generation_prompt is not None
            and self.turn_end is not None
            and prompt.endswith(self.generation_prompt)
        )
        if conversational:
            assert self.turn_end is not None
            return [*ids, *self.turn_end]
        if self.plain_bos is not None and (not ids or ids[0] != self.plain_bos):
            ids.insert(0, self.plain_bos)
        return [*ids, *([self.eos] if self.eos is not None else [])]

    def rewards(self, queries: Sequence[str], prompts: Sequence[str] | None = None) -> Rewards:
        rows = [
            self.query_ids(q, prompts[i] if prompts is not None else None)
            for i, q in enumerate(queries)
        ]
        with self.lock:
            scored = self.scorer.score_rows(rows, batch_size=self.batch_size)
        return Rewards(scored.combined(self.ensemble_lambda), scored.truncated)


def _generation_prompt(tokenizer: Any) -> str | None:
    """The text the chat template appends for ``add_generation_prompt`` (None without one)."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    messages = [{"role": "user", "content": "a"}]
    try:
        closed = str(tokenizer.apply_chat_template(messages, tokenize=False))
        opened = str(
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )
    except ValueError:
        return None
    tail = opened[len(closed) :] if opened.startswith(closed) else ""
    return tail or None


def parse_request(body: bytes) -> tuple[list[str], list[str] | None]:
    """Queries and prompts of a request body; :class:`BadRequest` says what is wrong."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"the body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object with 'query'")
    queries = data.get("query")
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise BadRequest("'query' must be a list of strings")
    if len(queries) > MAX_QUERIES:
        raise BadRequest(f"at most {MAX_QUERIES} queries per request")
    prompts = data.get("prompts")
    if prompts is not None and (
        not isinstance(prompts, list)
        or len(prompts) != len(queries)
        or not all(isinstance(p, str) for p in prompts)
    ):
        raise BadRequest("'prompts' must be a list of strings, one per query")
    return queries, prompts


def make_handler(service: RewardService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/health":
                self._answer(HTTPStatus.OK, {"status": "ok"})
            else:
                self._answer(HTTPStatus.NOT_FOUND, {"error": "POST /get_reward"})

        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/get_reward", ""):
                self._answer(HTTPStatus.NOT_FOUND, {"error": "POST /get_reward"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY:
                self._answer(
                    HTTPStatus.BAD_REQUEST, {"error": f"a body of 1…{MAX_BODY} bytes is needed"}
                )
                return
            try:
                queries, prompts = parse_request(self.rfile.read(length))
            except BadRequest as exc:
                self._answer(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                return
            self._answer(HTTPStatus.OK, service.rewards(queries, prompts).as_json())

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per batch of rollouts is noise

    return Handler


def serve(service: RewardService, host: str, port: int) -> ThreadingHTTPServer:
    """A started server (``server_address`` holds the port; ``shutdown()`` stops it)."""
    server = ThreadingHTTPServer((host, port), make_handler(service))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--reward", type=Path, required=True, help="Reward model directory.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
    parser.add_argument("--port", type=int, default=5000, help="Port to listen on.")
    parser.add_argument("--max-length", type=int, default=2048, help="Longest exchange read.")
    parser.add_argument(
        "--ensemble-lambda", type=float, default=1.0, help="Ensembles: mean − λ·std."
    )
    parser.add_argument("--batch-size", type=int, default=16, help="Rows per forward pass.")
    args = parser.parse_args(argv)
    service = RewardService(
        args.reward,
        max_length=args.max_length,
        ensemble_lambda=args.ensemble_lambda,
        batch_size=args.batch_size,
    )
    server = ThreadingHTTPServer((args.host, args.port), make_handler(service))
    print(f"serving {args.reward} at http://{args.host}:{server.server_address[1]}/get_reward")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
