"""The offline demo model's arithmetic: which expression a prompt sends to the calculator."""

from __future__ import annotations

import pytest

from deltakit_nb.offline import calculator, demo_agent, find_expression


@pytest.mark.parametrize(
    ("prompt", "expression", "value"),
    [
        ("what is 12 * (3 + 4)?", "12 * (3 + 4)", "84"),
        ("what is 2 ** 10 - 24?", "2 ** 10 - 24", "1000"),
        ("(1+2)*3", "(1+2)*3", "9"),
        ("compute -3 + 4.5 please", "-3 + 4.5", "1.5"),
        ("2^8", "2^8", "256"),
        ("(see 2+2)", "2+2", "4"),
        ("7 % 4 and then 1 + 1", "7 % 4", "3"),
    ],
)
def test_the_whole_expression_goes_to_the_calculator(
    prompt: str, expression: str, value: str
) -> None:
    assert find_expression(prompt) == expression
    assert calculator(expression) == value


@pytest.mark.parametrize("prompt", ["hello 42", "room 101, 2 people", "tell me a story", "3 ("])
def test_no_expression_no_tool_call(prompt: str) -> None:
    assert find_expression(prompt) is None


def test_calculator_refuses_what_is_not_arithmetic() -> None:
    with pytest.raises(ValueError, match="not an arithmetic expression"):
        calculator("__import__('os')")
    with pytest.raises(ValueError, match="exponent too large"):
        calculator("2 ** 1000")


async def test_power_prompt_runs_through_agno_with_the_right_result() -> None:
    output = await demo_agent(chunk_delay=0).arun("what is 2 ** 10 - 24?")
    assert [(t.tool_name, t.tool_args, t.result) for t in output.tools or []] == [
        ("calculator", {"expression": "2 ** 10 - 24"}, "1000")
    ]
    assert "1000" in str(output.content)


async def test_markdown_prompt_streams_n_sections_in_small_chunks() -> None:
    agent = demo_agent(chunk_delay=0)
    chunks = [
        e.content
        async for e in agent.arun("markdown 3", stream=True, stream_events=True)
        if e.event == "RunContent" and e.content
    ]
    text = "".join(chunks)
    assert text.count("## Section ") == 3 and text.count("```python") == 3
    assert max(len(c) for c in chunks) == 4
