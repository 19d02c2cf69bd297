"""Parse and validate import files: JSONL or a JSON array, in three record shapes.

1. A prompt with N candidate responses: ``{"id", "prompt", "responses": [...], "metadata"}``
2. An explicit pair: ``{"id", "prompt", "response_a", "response_b", "gold"?}``
3. A TRL preference row: ``{"prompt", "chosen", "rejected"}`` (standard or conversational)

``prompt`` is a string or a list of ``{"role", "content"}`` messages (multi-turn). Pure Python:
no database here; :mod:`annotation.importing` turns what this module yields into
:class:`~annotation.comparison_specs.PromptComparisons` and publishes them.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

from annotation.comparison_specs import ResponseSpec as ResponseSpec
from annotation.comparison_specs import content_hash as content_hash

MAX_CONTENT_CHARS = 100_000
MAX_RESPONSES = 50
MAX_ID_CHARS = 255
MAX_METADATA_BYTES = 64 * 1024  # a record's (or a response's) metadata, as JSON
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Zs", "Mn"})
ROLES = frozenset({"system", "user", "assistant"})
GOLD_CHOICES = frozenset({"A", "B", "tie", "both_bad"})


class RecordError(ValueError):
    """One record is unusable; the message says why."""


@dataclass(frozen=True)
class PromptRecord:
    """One valid record: a prompt, its responses, and explicit pairs (indices) if any."""

    line: int
    external_id: str
    messages: list[dict[str, str]]
    responses: list[ResponseSpec]
    metadata: dict[str, Any]
    explicit_pairs: list[tuple[int, int, str]]  # (i, j, gold choice in i/j terms or "")


@dataclass(frozen=True)
class BadLine:
    line: int
    message: str


def iter_json_values(stream: IO[bytes]) -> Iterator[tuple[int, Any | BadLine]]:
    """Yield ``(line_number, value_or_BadLine)`` from JSONL, or from a JSON array.

    JSONL is streamed line by line (constant memory). A JSON array is read whole and each
    element is reported with the line it starts on.
    """
    first = _peek_first_byte(stream)
    if first == b"[":
        yield from _iter_array(stream)
        return
    for number, raw in enumerate(stream, start=1):
        try:
            yield number, orjson.loads(raw)
        except orjson.JSONDecodeError:
            if raw.strip():
                yield number, BadLine(number, _why_not_json(raw))


def _why_not_json(raw: bytes) -> str:
    """A readable reason for a line that orjson refused."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start}"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return "invalid JSON: nested too deeply"
    return "invalid JSON: unsupported value (NaN, Infinity or an integer beyond 64 bits)"


def _peek_first_byte(stream: IO[bytes]) -> bytes:
    start = stream.tell()
    while True:
        chunk = stream.read(1)
        if not chunk or not chunk.isspace():
            break
    stream.seek(start)
    return chunk.lstrip(b"\xef\xbb\xbf")[:1] if chunk else b""


def _iter_array(stream: IO[bytes]) -> Iterator[tuple[int, Any | BadLine]]:
    data = stream.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        yield line, BadLine(line, f"invalid UTF-8 at byte {exc.start}")
        return
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    length = len(text)

    def skip_ws(p: int) -> int:
        while p < length and text[p] in " \t\r\n":
            p += 1
        return p

    pos = skip_ws(pos)
    if pos < length and text[pos] == "]":
        return
    line, counted = 1, 0  # line of ``counted``: newlines are counted once, as pos advances

    def line_at(p: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, p)
        counted = p
        return line

    while pos < length:
        line = line_at(pos)
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield exc.lineno, BadLine(exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")
            return
        except RecursionError:
            yield line, BadLine(line, "invalid JSON: nested too deeply")
            return
        yield line, value
        pos = skip_ws(pos)
        if pos < length and text[pos] == ",":
            pos = skip_ws(pos + 1)
            continue
        if pos < length and text[pos] == "]":
            return
        bad = line_at(pos)
        yield bad, BadLine(bad, "invalid JSON: expected ',' or ']' between array elements")
        return
    yield line, BadLine(line, "invalid JSON: unterminated array")


def parse_record(line: int, value: Any) -> PromptRecord:
    """Validate one decoded JSON value and normalize it; raise :class:`RecordError`."""
    if not isinstance(value, dict):
        raise RecordError(f"expected a JSON object, got {type(value).__name__}")
    if _has_nul(value):  # PostgreSQL text and jsonb cannot store U+0000
        raise RecordError("text must not contain NUL characters (\\u0000)")
    messages = parse_prompt(value.get("prompt"))
    metadata = value.get("metadata", {})
    if not isinstance(metadata, dict):
        raise RecordError("'metadata' must be an object")
    if metadata:  # ("{}" is always small enough)
        _check_metadata("'metadata'", metadata)
    external_id = value.get("id", value.get("external_id"))
    if external_id is None:
        external_id = (
            "sha256:"
            + hashlib.sha256(
                json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()
            ).hexdigest()[:32]
        )
    elif isinstance(external_id, (str, int)) and not isinstance(external_id, bool):
        external_id = str(external_id)
        if not external_id.strip() or len(external_id) > MAX_ID_CHARS:
            raise RecordError(f"'id' must be 1–{MAX_ID_CHARS} characters")
    else:
        raise RecordError("'id' must be a string or an integer")

    if "responses" in value:
        return _shape_candidates(line, external_id, messages, metadata, value["responses"])
    if "response_a" in value or "response_b" in value:
        return _shape_pair(line, external_id, messages, metadata, value)
    if "chosen" in value or "rejected" in value:
        return _shape_trl(line, external_id, messages, metadata, value)
    raise RecordError(
        "unknown record shape: expected 'responses', 'response_a'/'response_b', "
        "or 'chosen'/'rejected'"
    )


def _has_nul(value: Any) -> bool:
    """Any string (or key) in the value holds U+0000. orjson writes U+0000 as ``\\u0000``
    wherever it is, so a value whose JSON lacks that text (nearly all) is clear after one
    C-speed pass; the others, and values orjson cannot write (integers beyond 64 bits, nesting
    deeper than it goes), are walked."""
    try:
        if b"\\u0000" not in orjson.dumps(value):
            return False
    except orjson.JSONEncodeError:
        pass
    return _walk_has_nul(value)


def _walk_has_nul(value: Any) -> bool:
    """Any string (or key) in the value holds U+0000; iterative, so any depth is fine."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _check_metadata(where: str, metadata: dict[str, Any]) -> None:
    if len(orjson.dumps(metadata)) > MAX_METADATA_BYTES:
        raise RecordError(f"{where} is larger than {MAX_METADATA_BYTES // 1024} KiB as JSON")


def is_invisible(text: str) -> bool:
    """Nothing a reader would see: only whitespace, control and format characters (zero-width
    spaces and joiners, the BOM, bidirectional marks …)."""
    for ch in text:  # a plain loop: most texts stop at their first character
        if not ch.isspace() and unicodedata.category(ch) not in INVISIBLE_CATEGORIES:
            return False
    return True


def parse_prompt(prompt: Any) -> list[dict[str, str]]:
    """A prompt string or a list of messages → a validated list of messages."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise RecordError("'prompt' is empty")
        _check_length("prompt", prompt)
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list):
        if not prompt:
            raise RecordError("'prompt' has no messages")
        messages = [_parse_message(f"prompt[{i}]", m) for i, m in enumerate(prompt)]
        if not any(m["role"] == "user" for m in messages):
            raise RecordError("'prompt' has no user message")
        if messages[-1]["role"] == "assistant":
            raise RecordError("'prompt' must not end with an assistant message")
        return messages
    if prompt is None:
        raise RecordError("missing 'prompt'")
    raise RecordError("'prompt' must be a string or a list of {role, content} messages")


def _parse_message(where: str, message: Any) -> dict[str, str]:
    if not isinstance(message, dict):
        raise RecordError(f"{where} must be an object with 'role' and 'content'")
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise RecordError(f"{where}.role must be one of {sorted(ROLES)}")
    if not isinstance(content, str):
        raise RecordError(f"{where}.content must be a string")
    _check_length(f"{where}.content", content)
    return {"role": role, "content": content}


def _check_length(where: str, text: str) -> None:
    if len(text) > MAX_CONTENT_CHARS:
        raise RecordError(f"{where} is longer than {MAX_CONTENT_CHARS} characters")


def parse_response(where: str, value: Any) -> ResponseSpec:
    """A response is a string, an object with 'content', or (TRL) a list of messages."""
    metadata: dict[str, Any] = {}
    if isinstance(value, dict):
        metadata = value.get("metadata", {})
        if not isinstance(metadata, dict):
            raise RecordError(f"{where}.metadata must be an object")
        if metadata:
            _check_metadata(f"{where}.metadata", metadata)
        value = value.get("content")
    elif isinstance(value, list):
        messages = [_parse_message(f"{where}[{i}]", m) for i, m in enumerate(value)]
        assistant = [m["content"] for m in messages if m["role"] == "assistant"]
        if not assistant:
            raise RecordError(f"{where} has no assistant message")
        value = assistant[-1]
    if not isinstance(value, str):
        raise RecordError(f"{where} must be a string")
    stripped = value.strip()  # (strip removes exactly what isspace calls whitespace)
    if not stripped:
        raise RecordError(f"{where} is empty")
    first = stripped[0]
    if not (first.isascii() and first.isalnum()) and is_invisible(stripped):
        raise RecordError(f"{where} has only invisible characters")
    if len(value) > MAX_CONTENT_CHARS:
        raise RecordError(f"{where} is longer than {MAX_CONTENT_CHARS} characters")
    return ResponseSpec(value, metadata)


def _shape_candidates(
    line: int,
    external_id: str,
    messages: list[dict[str, str]],
    metadata: dict[str, Any],
    responses: Any,
) -> PromptRecord:
    if not isinstance(responses, list):
        raise RecordError("'responses' must be a list")
    if not 2 <= len(responses) <= MAX_RESPONSES:
        raise RecordError(f"'responses' must hold 2–{MAX_RESPONSES} candidates")
    specs = [parse_response(f"responses[{i}]", r) for i, r in enumerate(responses)]
    unique = {s.content_hash for s in specs}
    if len(unique) < 2:
        raise RecordError("'responses' needs at least two different candidates")
    return PromptRecord(line, external_id, messages, specs, metadata, [])


def _shape_pair(
    line: int,
    external_id: str,
    messages: list[dict[str, str]],
    metadata: dict[str, Any],
    value: dict[str, Any],
) -> PromptRecord:
    a = parse_response("response_a", value.get("response_a"))
    b = parse_response("response_b", value.get("response_b"))
    if a.content_hash == b.content_hash:
        raise RecordError("response_a and response_b are identical")
    gold = value.get("gold", "")
    if gold is None:
        gold = ""
    if gold != "" and gold not in GOLD_CHOICES:
        raise RecordError(f"'gold' must be one of {sorted(GOLD_CHOICES)}")
    return PromptRecord(line, external_id, messages, [a, b], metadata, [(0, 1, gold)])


def _shape_trl(
    line: int,
    external_id: str,
    messages: list[dict[str, str]],
    metadata: dict[str, Any],
    value: dict[str, Any],
) -> PromptRecord:
    chosen = parse_response("chosen", value.get("chosen"))
    rejected = parse_response("rejected", value.get("rejected"))
    if chosen.content_hash == rejected.content_hash:
        raise RecordError("chosen and rejected are identical")
    tagged = [
        ResponseSpec(chosen.content, {**chosen.metadata, "trl_label": "chosen"}),
        ResponseSpec(rejected.content, {**rejected.metadata, "trl_label": "rejected"}),
    ]
    return PromptRecord(line, external_id, messages, tagged, metadata, [(0, 1, "")])
