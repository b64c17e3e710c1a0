"""The optional LLM judge against a loopback fake of the Anthropic Messages API, through the real `anthropic` SDK."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Score, Ticket
from tracker_bridge.scoring import render_score_markdown, score_ticket

KEY_ENV = "TB_TEST_JUDGE_KEY"

TICKET = Ticket(
    ref="PAY-7",
    tracker="jira",
    title="`invoice_total()` ignores the discount",
    description="`invoice_total([Line(10)], discount=0.1)` returns 10. Expected: 9.\n\nAcceptance criteria: returns 9.",
)


@dataclass
class FakeMessages:
    """POST /v1/messages answers with `text` as the assistant's reply, or with `status` and an error body."""

    text: str = '{"score": 0.9, "reason": "small and precise", "missing": []}'
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture()
def fake() -> Iterator[FakeMessages]:
    state = FakeMessages()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
            state.requests.append(body)
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            if self.path.split("?")[0] != "/v1/messages":
                self._send(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
            elif state.status != 200:
                self._send(state.status, {"type": "error", "error": {"type": "api_error", "message": "boom"}})
            else:
                self._send(
                    200,
                    {
                        "id": "msg_test",
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model"),
                        "content": [{"type": "text", "text": state.text}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {"input_tokens": 50, "output_tokens": 20},
                    },
                )

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-judge")


def config(url: str, **overrides: Any) -> ScoringConfig:
    values: dict[str, Any] = {"llm": True, "base_url": url, "api_key_env": KEY_ENV, "llm_model": "claude-test"}
    return ScoringConfig(**(values | overrides))


def offline(threshold: float = 0.6) -> Score:
    return score_ticket(TICKET, ScoringConfig(threshold=threshold))


def test_judge_is_blended_as_one_more_factor(fake: FakeMessages) -> None:
    score = score_ticket(TICKET, config(fake.url, llm_weight=0.4))

    llm = next(f for f in score.factors if f.name == "llm")
    assert llm.value == 0.9
    assert llm.weight == 0.4
    assert "small and precise" in llm.reason
    # What the SDK really sent: the configured model, the key from the named variable, the ticket text.
    assert len(fake.requests) == 1
    assert fake.requests[0]["model"] == "claude-test"
    sent = fake.headers[0]
    # SDK versions send the key as x-api-key or as a bearer token; either way it is the variable's value.
    assert "sk-test-judge" in (sent.get("x-api-key"), sent.get("authorization", "").removeprefix("Bearer "))
    assert "invoice_total()" in json.dumps(fake.requests[0]["messages"])


def test_a_doubtful_judge_lowers_the_score_and_its_missing_items_become_suggestions(fake: FakeMessages) -> None:
    fake.text = (
        'Here you go: {"score": 0.05, "reason": "the discount rules are unknown", "missing": ["the rounding rule"]}'
    )
    score = score_ticket(TICKET, config(fake.url, llm_weight=1.0))

    assert score.value < offline().value
    assert not score.accepted
    assert any("the rounding rule (LLM judge)" in s for s in score.suggestions)


@pytest.mark.parametrize(
    ("text", "status", "note"),
    [
        ("I think this ticket is fine.", 200, "LLM judge gave an unusable answer"),
        ('{"score": 7, "reason": "out of range"}', 200, "is not a number between 0 and 1"),
        ("", 500, "LLM judge failed"),
    ],
)
def test_a_failing_judge_falls_back_to_the_offline_factors_and_says_so(
    fake: FakeMessages, text: str, status: int, note: str
) -> None:
    fake.text, fake.status = text, status
    score = score_ticket(TICKET, config(fake.url))

    assert all(f.name != "llm" for f in score.factors)
    assert score.value == offline().value
    assert any(note in r for r in score.reasons)
    assert "offline factors only" in render_score_markdown(score)


def test_unreachable_judge_falls_back() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    score = score_ticket(TICKET, config(f"http://127.0.0.1:{port}"))

    assert all(f.name != "llm" for f in score.factors)
    assert any("LLM judge failed (APIConnectionError" in r for r in score.reasons)


def test_missing_key_skips_the_judge_without_a_request(fake: FakeMessages, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    score = score_ticket(TICKET, config(fake.url))

    assert fake.requests == []
    assert any(f"environment variable {KEY_ENV} is not set" in r for r in score.reasons)
    assert score.value == offline().value


def test_judge_is_off_by_default(fake: FakeMessages) -> None:
    score = score_ticket(TICKET, ScoringConfig(base_url=fake.url, api_key_env=KEY_ENV))

    assert fake.requests == []
    assert all(f.name != "llm" for f in score.factors)


RUBRIC_ANSWER = (
    '{"scope": 1.0, "clarity": 0.2, "kind": 1.0, "risk": 1.0, "reason": "the discount rule is unclear", '
    '"missing": ["the rounding rule"]}'
)


def test_rubric_answer_is_averaged_like_the_offline_blend(fake: FakeMessages) -> None:
    fake.text = RUBRIC_ANSWER
    score = score_ticket(TICKET, config(fake.url))

    llm = next(f for f in score.factors if f.name == "llm")
    # The weighted mean of the rubric with the offline blend's weights, not a plain average.
    from tracker_bridge.scoring.model import load_weights

    w = load_weights().blend
    expected = (w["scope"] * 1.0 + w["clarity"] * 0.2 + w["kind"] * 1.0 + w["risk"] * 1.0) / (
        w["scope"] + w["clarity"] + w["kind"] + w["risk"]
    )
    assert llm.value == pytest.approx(expected, abs=0.001)
    assert "clarity" in fake.requests[0]["system"] and "acceptance criteria" in fake.requests[0]["system"]


def test_answers_are_cached_by_ticket_content_and_their_cost_is_in_the_ledger(
    fake: FakeMessages, tmp_path: Path
) -> None:
    from tracker_bridge.scoring.judge import spent_on

    fake.text = RUBRIC_ANSWER
    cfg = config(fake.url, llm_model="claude-sonnet-4-5")
    cfg._weights_dir = tmp_path
    first = score_ticket(TICKET, cfg)
    again = score_ticket(TICKET, cfg)
    assert len(fake.requests) == 1  # the unchanged ticket was not asked again
    assert first.value == again.value
    # 50 input and 20 output tokens at the list price of claude-sonnet-4-5 ($3 / $15 per million).
    today = datetime.now(UTC).date()
    assert spent_on(tmp_path, today) == pytest.approx((50 * 3.0 + 20 * 15.0) / 1e6)

    edited = TICKET.model_copy(update={"description": TICKET.description + " Also for credit notes."})
    score_ticket(edited, cfg)
    assert len(fake.requests) == 2  # new content, new question
    assert spent_on(tmp_path, today) == pytest.approx(2 * (50 * 3.0 + 20 * 15.0) / 1e6)
