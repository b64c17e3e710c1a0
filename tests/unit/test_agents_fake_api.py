"""The loopback fake of the Messages API answers what real clients send, checked with the real anthropic SDK."""

from __future__ import annotations

import anthropic
from anthropic.types import ToolParam

from tests.sims.fake_anthropic import FakeAnthropic, text, tool

TOOLS: list[ToolParam] = [
    {"name": "run_command", "description": "run", "input_schema": {"type": "object", "properties": {}}}
]


def test_streamed_tool_use_arrives_whole_and_side_calls_do_not_consume_the_script() -> None:
    script = [tool("run_command", "Running.", command="pytest -q"), text("All done.")]
    with FakeAnthropic(script=script) as fake:
        client = anthropic.Anthropic(api_key="fake", base_url=fake.url, max_retries=0)
        # a side call (a CLI's title or quota probe): no tools, not part of the script
        side = client.messages.create(
            model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "t"}]
        )
        assert side.content[0].type == "text" and fake.served_turns == 0
        with client.messages.stream(
            model="claude-sonnet-4-5", max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "go"}]
        ) as stream:
            first = stream.get_final_message()
        assert first.stop_reason == "tool_use"
        assert [b.type for b in first.content] == ["text", "tool_use"]
        assert first.content[1].input == {"command": "pytest -q"}  # type: ignore[union-attr]
        assert first.usage.input_tokens == 1200 and first.usage.output_tokens == 150
        second = client.messages.create(
            model="claude-sonnet-4-5", max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "go"}]
        )
        assert second.stop_reason == "end_turn" and second.content[0].text == "All done."  # type: ignore[union-attr]
        assert client.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}])
    assert [r.path for r in fake.requests] == ["/v1/messages"] * 3 + ["/v1/messages/count_tokens"]
    assert len(fake.main_requests) == 2
