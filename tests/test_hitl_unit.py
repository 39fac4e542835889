"""Human in the loop, piece by piece: the adapter on real agno pause events, the decision
checks, and the store's follow/unfollow of a paused run's log."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_adapter import agno_events, translate

from deltakit_nb import hitl
from deltakit_nb.protocol import DecisionFrame, FrameError, parse_decisions, parse_frame
from deltakit_nb.server.eventlog import EventLog
from deltakit_nb.stores.sqlite import EventStore


def paused(message: str) -> tuple[list[dict], dict]:
    out, adapter = translate(agno_events(message, yield_run_output=True))
    assert adapter.status is None and adapter.paused is not None
    assert adapter.output is not None and adapter.output.status.value == "PAUSED"
    assert out[-1]["type"] == "run_paused" and out[-1]["requirements"] == adapter.paused
    return out, out[-1]


def test_a_confirmation_pause_is_run_paused_not_a_terminal_event() -> None:
    out, event = paused('tool confirm_action {"action": "wipe"}')
    assert [e["type"] for e in out] == ["run_paused"]  # no tool_call: the card stands for it
    [req] = event["requirements"]
    assert req == {
        "id": req["id"],
        "kind": "confirmation",
        "call_id": "call_2_confirm_action",
        "tool_name": "confirm_action",
        "argument": json.dumps({"action": "wipe"}),
    }


def test_user_input_and_external_execution_requirements() -> None:
    _, event = paused('tool collect_input {"question": "Name?"}')
    [req] = event["requirements"]
    assert req["kind"] == "user_input"
    assert req["fields"] == [
        {
            "name": "answer",
            "type": "str",
            "description": "the user's answer (the user provides it).",
        }
    ] or [f["name"] for f in req["fields"]] == ["answer"]
    _, event = paused('tool run_elsewhere {"task": "t"}')
    assert event["requirements"][0]["kind"] == "external_execution"
    assert "fields" not in event["requirements"][0]


def test_decision_frames_parse() -> None:
    frame = parse_frame('{"runId": "r", "decisions": [{"id": "q", "approve": false}]}', 100)
    assert frame == DecisionFrame("r", ({"id": "q", "approve": False},))
    # A null value is an absent key; a lone surrogate in a note is replaced, as in a message.
    assert parse_decisions([{"id": "q", "note": None, "approve": True}]) == (
        {"id": "q", "approve": True},
    )
    assert parse_decisions([{"id": "q", "note": "\ud800"}]) == ({"id": "q", "note": "\ufffd"},)
    for bad, problem in [
        ('{"decisions": []}', "'runId' must be a non-empty string"),
        ('{"runId": "r", "decisions": {}}', "'decisions' must be a non-empty list"),
        ('{"runId": "r", "decisions": [1]}', "decisions[0] must be an object"),
        ('{"runId": "r", "decisions": [{"id": 1}]}', "'decisions[0].id' must be"),
        ('{"runId": "r", "decisions": [{"id": "q", "values": []}]}', "'values' must be an object"),
        ('{"runId": "r", "decisions": [{"id": "q", "result": 5}]}', "'result' must be a string"),
    ]:
        with pytest.raises(FrameError) as err:
            parse_frame(bad, 100)
        assert problem in str(err.value), (bad, str(err.value))
    with pytest.raises(FrameError, match="too many decisions"):
        parse_decisions([{"id": str(i)} for i in range(101)])


def test_check_decisions() -> None:
    reqs = [
        {"id": "a", "kind": "confirmation", "call_id": "c1", "tool_name": "t", "argument": "{}"},
        {
            "id": "b",
            "kind": "user_input",
            "call_id": "c2",
            "tool_name": "u",
            "argument": "{}",
            "fields": [{"name": "n", "type": "float", "description": ""}],
        },
    ]
    ok = hitl.check_decisions(reqs, ({"id": "b", "values": {"n": 2}}, {"id": "a", "approve": True}))
    assert ok == [{"id": "a", "approve": True}, {"id": "b", "values": {"n": 2}}]  # in order
    with pytest.raises(FrameError, match=r"a decision is missing for requirement\(s\) b"):
        hitl.check_decisions(reqs, ({"id": "a", "approve": True},))
    with pytest.raises(FrameError, match="field 'n' must be of type float, not bool"):
        hitl.check_decisions(
            reqs, ({"id": "a", "approve": True}, {"id": "b", "values": {"n": True}})
        )


def test_settled_calls_for_a_rejection_and_an_external_result() -> None:
    req = {"id": "a", "kind": "confirmation", "call_id": "c", "tool_name": "t", "argument": "{}"}
    call, result = hitl.settled_calls(req, {"id": "a", "approve": False, "note": "no"})
    assert call.pop("ts") == result["ts"] > 0
    assert call == {"type": "tool_call", "tool_name": "t", "argument": "{}", "call_id": "c"}
    assert result["output"] == "Rejected by the user: no" and result["is_error"] is True
    assert hitl.settled_calls(req, {"id": "a", "approve": False})[1]["output"] == (
        "Rejected by the user."
    )
    assert hitl.settled_calls(req, {"id": "a", "approve": True}) == []


def test_requirements_of_a_stored_log_are_the_last_pauses() -> None:
    log = EventLog("r")
    log.append({"type": "run_paused", "requirements": [{"id": "first"}]})
    log.append({"type": "run_resumed", "decisions": [{"id": "first", "approve": True}]})
    log.append({"type": "run_paused", "requirements": [{"id": "second"}]})
    assert hitl.requirements_of(log.encoded()) == [{"id": "second"}]


def test_the_store_stops_polling_a_paused_log_and_takes_it_up_again(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "runs.sqlite")
    log = EventLog("r")
    store.follow("r", log)
    log.append({"type": "run_started"})
    log.append({"type": "run_paused", "requirements": []})
    store.unfollow("r")
    assert store.flush()
    time.sleep(0.1)
    assert store._idle  # asleep: no followed log keeps it polling
    log.append(
        {"type": "run_resumed", "decisions": []}
    )  # appended before the follow, as decide does
    store.follow("r", log, 1)  # the writer's own count (2) wins over the caller's
    log.append({"type": "done", "status": "completed"})
    log.close()
    assert store.flush()
    stored = store.load_run("r")
    assert stored is None  # no runs row was saved: events only
    rows = store._read.execute("SELECT body FROM event_batches ORDER BY first_id").fetchall()
    events = [json.loads(t) for (body,) in rows for t in body.split("\n")]
    assert [e["eventId"] for e in events] == [0, 1, 2, 3]
    store.close()
