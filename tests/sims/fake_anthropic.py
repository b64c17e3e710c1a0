"""A loopback fake of the Anthropic Messages API, scripted turn by turn, for agent tests.

It is a real HTTP server on 127.0.0.1 that speaks what the `anthropic` SDK and the Claude Code CLI send:
`POST /v1/messages` (JSON, or server-sent events when `stream` is true), `POST /v1/messages/count_tokens`, and
`GET /v1/models`. Every request is logged (`server.requests`) so a test can see what a client really asked.

A *main-loop* request (one that offers tools) gets the next scripted `Turn`; when the script is exhausted it gets
`default` (a plain "done" by default, or a tool call forever to exercise caps). Any other request (titles, topic
checks, quota probes a CLI makes on the side) gets a short text answer, so those calls never consume the script.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.sims.http import LoopbackServer


@dataclass
class Turn:
    """One assistant message: content blocks as the API returns them (ids of tool_use blocks are filled in)."""

    content: list[dict[str, Any]]
    input_tokens: int = 1200
    output_tokens: int = 150
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    delay_s: float = 0.0

    @property
    def stop_reason(self) -> str:
        return "tool_use" if any(b.get("type") == "tool_use" for b in self.content) else "end_turn"


def text(message: str, **kw: Any) -> Turn:
    return Turn([{"type": "text", "text": message}], **kw)


def tool(name: str, thought: str = "", /, **tool_input: Any) -> Turn:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": thought}] if thought else []
    blocks.append({"type": "tool_use", "name": name, "input": tool_input})
    return Turn(blocks)


@dataclass
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def is_main_loop(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("tools")) and self.path.endswith("/messages")


@dataclass
class FakeAnthropic(LoopbackServer):
    script: list[Turn] = field(default_factory=list)
    default: Turn | Callable[[dict[str, Any]], Turn] = field(default_factory=lambda: text("Done."))
    side_answer: str = "ok"
    error: tuple[int, str, str] | None = None  # (status, error type, message) for every /v1/messages request
    requests: list[Logged] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.served_turns = 0

    # --- what the tests look at ------------------------------------------------------------------------------------

    @property
    def main_requests(self) -> list[Logged]:
        return [r for r in self.requests if r.is_main_loop]

    def tool_results(self) -> list[dict[str, Any]]:
        """Every tool_result block the client sent back, in order (last request holds the whole history)."""
        if not self.main_requests:
            return []
        out: list[dict[str, Any]] = []
        for msg in self.main_requests[-1].body.get("messages", []):
            if msg.get("role") == "user" and isinstance(msg.get("content"), list):
                out.extend(b for b in msg["content"] if isinstance(b, dict) and b.get("type") == "tool_result")
        return out

    @staticmethod
    def result_text(block: dict[str, Any]) -> str:
        content = block.get("content")
        if isinstance(content, list):
            return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        return str(content or "")

    # --- answering ---------------------------------------------------------------------------------------------------

    def _next_turn(self, body: dict[str, Any]) -> Turn:
        with self._lock:
            if self.served_turns < len(self.script):
                turn = self.script[self.served_turns]
            else:
                turn = self.default(body) if callable(self.default) else self.default
            self.served_turns += 1
            return turn

    def _message(self, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
        if isinstance(body.get("tools"), list) and body["tools"]:
            turn = self._next_turn(body)
        else:
            turn = text(self.side_answer, input_tokens=50, output_tokens=5)
        content = []
        for block in turn.content:
            b = dict(block)
            if b.get("type") == "tool_use":
                b.setdefault("id", f"toolu_fake_{next(self._ids):04d}")
            content.append(b)
        message = {
            "id": f"msg_fake_{next(self._ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-sonnet-4-5"),
            "content": content,
            "stop_reason": turn.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": turn.input_tokens,
                "output_tokens": turn.output_tokens,
                "cache_creation_input_tokens": turn.cache_creation_input_tokens,
                "cache_read_input_tokens": turn.cache_read_input_tokens,
            },
        }
        return message, turn.delay_s

    @staticmethod
    def sse_events(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        start = dict(message, content=[], stop_reason=None)
        start["usage"] = dict(message["usage"], output_tokens=1)
        yield "message_start", {"type": "message_start", "message": start}
        yield "ping", {"type": "ping"}
        for i, block in enumerate(message["content"]):
            if block["type"] == "text":
                yield (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
                txt = block["text"]
                for part in (txt[: len(txt) // 2], txt[len(txt) // 2 :]):
                    yield (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "text_delta", "text": part},
                        },
                    )
            else:
                yield (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}},
                    },
                )
                raw = json.dumps(block["input"])
                for part in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
                    yield (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "input_json_delta", "partial_json": part},
                        },
                    )
            yield "content_block_stop", {"type": "content_block_stop", "index": i}
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
        yield "message_stop", {"type": "message_stop"}

    # --- the server --------------------------------------------------------------------------------------------------

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", "req_fake")
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                path = urlsplit(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                with fake._lock:
                    fake.requests.append(
                        Logged(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                if self.command == "POST" and path.endswith("/v1/messages/count_tokens"):
                    self._json(200, {"input_tokens": 1000})
                elif self.command == "POST" and path.endswith("/v1/messages") and fake.error is not None:
                    status, kind, message = fake.error
                    self._json(status, {"type": "error", "error": {"type": kind, "message": message}})
                elif self.command == "POST" and path.endswith("/v1/messages") and isinstance(body, dict):
                    reply, delay = fake._message(body)
                    if delay:
                        time.sleep(delay)
                    if body.get("stream"):
                        self._stream(reply)
                    else:
                        self._json(200, reply)
                elif self.command == "HEAD" and path == "/":
                    self.send_response(200)  # Claude Code's connectivity probe
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.command == "GET" and path.endswith("/v1/models"):
                    model = {
                        "type": "model",
                        "id": "claude-sonnet-4-5",
                        "display_name": "Claude Sonnet 4.5",
                        "created_at": "2025-09-29T00:00:00Z",
                    }
                    self._json(
                        200, {"data": [model], "has_more": False, "first_id": model["id"], "last_id": model["id"]}
                    )
                else:
                    self._json(
                        404,
                        {
                            "type": "error",
                            "error": {"type": "not_found_error", "message": f"fake: no route {self.command} {path}"},
                        },
                    )

            def _stream(self, message: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.send_header("request-id", "req_fake")
                self.end_headers()
                for event, data in fake.sse_events(message):
                    self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                self.close_connection = True

            do_GET = do_POST = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return _Handler
