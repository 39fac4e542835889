"""Human in the loop: agno's run requirements as protocol requirements, and the user's
decisions on them checked and applied. Pure: no I/O, no server.

A paused run holds one requirement per tool call that waits for the user. On the wire each is

    {"id", "kind", "call_id", "tool_name", "argument" (JSON text),
     "fields"?: [{"name", "type", "description"}]                        (kind user_input)
     "questions"?: [{"question", "header"?, "options": [{"label", "description"?}],
                     "multi_select"}]}                                   (kind user_feedback)

and a decision is {"id", "approve"?, "note"?, "values"?, "result"?}:

    confirmation        "approve": true | false, "note"? (the reason given to the model)
    user_input          "values": {field name: value of the field's type} for every field
    user_feedback       "values": {question: [option label, ...]} for every question (one
                        label at most unless multi_select)
    external_execution  "result": the tool's output, as text

Every open requirement of the run needs its decision in the same frame: a run continues once,
with all of them.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import protocol
from .adapter import _arguments
from .protocol import Event, FrameError, clean_text

KINDS = ("confirmation", "user_input", "user_feedback", "external_execution")
# The JSON types a user_input field of each agno field type takes (ints are floats too).
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}
REJECTED_NOTE = "The user rejected this tool call."
# agno's UserControlFlowTools tool; UserFeedbackTools' ask_user is the user_feedback kind.
BUILTIN_INPUT = "get_user_input"
REJECTED_PREFIX = "Rejected by the user"


def requirement_json(requirement: Any) -> dict[str, Any]:
    """The protocol form of an agno RunRequirement."""
    tool = requirement.tool_execution
    kind = requirement.pause_type if requirement.pause_type in KINDS else "confirmation"
    out: dict[str, Any] = {
        "id": requirement.id,
        "kind": kind,
        "call_id": tool.tool_call_id if tool is not None else None,
        "tool_name": (tool.tool_name if tool is not None else None) or "",
        "argument": _arguments(tool.tool_args if tool is not None else None),
    }
    if kind == "user_input":
        out["fields"] = [
            {
                "name": f["name"],
                "type": f["field_type"],
                "description": f.get("description") or "",
            }
            for f in (field.to_dict() for field in requirement.user_input_schema or [])
            if f.get("value") is None  # a field the model already filled is not asked
        ]
    elif kind == "user_feedback":
        out["questions"] = [_question(q) for q in requirement.user_feedback_schema or []]
    return out


def _question(question: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"question": question.question}
    if question.header:
        out["header"] = question.header
    out["options"] = [
        {"label": o.label, **({"description": o.description} if o.description else {})}
        for o in question.options or []
    ]
    out["multi_select"] = bool(question.multi_select)
    return out


def check_decisions(
    requirements: list[dict[str, Any]], decisions: tuple[dict[str, Any], ...]
) -> list[dict[str, Any]]:
    """The decisions, one per requirement in the requirements' order, each with the fields its
    kind takes; or FrameError naming the first problem. `decisions` is shaped already
    (protocol.parse_decisions)."""
    by_id = {r["id"]: r for r in requirements}
    seen: dict[str, dict[str, Any]] = {}
    for decision in decisions:
        req_id = decision["id"]
        requirement = by_id.get(req_id)
        if requirement is None:
            known = ", ".join(by_id) or "none"
            raise FrameError(f"unknown requirement id {req_id!r} (open requirements: {known})")
        if req_id in seen:
            raise FrameError(f"requirement {req_id!r} has more than one decision")
        seen[req_id] = _check(requirement, decision)
    missing = [r["id"] for r in requirements if r["id"] not in seen]
    if missing:
        raise FrameError(
            "a decision is missing for requirement(s) " + ", ".join(missing) + ": every open "
            "requirement of the run needs its decision in the same frame"
        )
    return [seen[r["id"]] for r in requirements]


def _check(requirement: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    req_id, kind = requirement["id"], requirement["kind"]
    allowed = {
        "confirmation": {"approve", "note"},
        "user_input": {"values"},
        "user_feedback": {"values"},
        "external_execution": {"result"},
    }[kind]
    extra = sorted(set(decision) - allowed - {"id"})
    if extra:
        raise FrameError(
            f"requirement {req_id!r} ({kind}) takes no {', '.join(map(repr, extra))}; "
            f"it takes {', '.join(map(repr, sorted(allowed)))}"
        )
    if kind == "confirmation":
        if "approve" not in decision:
            raise FrameError(f"requirement {req_id!r} (confirmation) needs 'approve': true/false")
        return {"id": req_id, **{k: decision[k] for k in ("approve", "note") if k in decision}}
    if kind == "external_execution":
        if "result" not in decision:
            raise FrameError(f"requirement {req_id!r} (external_execution) needs 'result'")
        return {"id": req_id, "result": decision["result"]}
    values = decision.get("values")
    if values is None:
        raise FrameError(f"requirement {req_id!r} ({kind}) needs 'values'")
    if kind == "user_input":
        return {"id": req_id, "values": _check_fields(req_id, requirement["fields"], values)}
    return {"id": req_id, "values": _check_answers(req_id, requirement["questions"], values)}


def _check_fields(
    req_id: str, fields: list[dict[str, Any]], values: dict[str, Any]
) -> dict[str, Any]:
    names = {f["name"]: f for f in fields}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise FrameError(
            f"requirement {req_id!r}: unknown field(s) {', '.join(map(repr, unknown))} "
            f"(fields: {', '.join(names) or 'none'})"
        )
    for name, field in names.items():
        if name not in values or values[name] is None:
            raise FrameError(f"requirement {req_id!r}: field {name!r} is missing")
        value = values[name]
        types = FIELD_TYPES.get(field["type"], (str,))
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise FrameError(
                f"requirement {req_id!r}: field {name!r} must be of type {field['type']}, "
                f"not {type(value).__name__}"
            )
    return {k: _clean(v) for k, v in values.items()}


def _check_answers(
    req_id: str, questions: list[dict[str, Any]], values: dict[str, Any]
) -> dict[str, list[str]]:
    by_text = {q["question"]: q for q in questions}
    unknown = sorted(set(values) - set(by_text))
    if unknown:
        raise FrameError(f"requirement {req_id!r}: unknown question(s) {unknown!r}")
    out: dict[str, list[str]] = {}
    for text, question in by_text.items():
        labels = values.get(text)
        if labels is None:
            raise FrameError(f"requirement {req_id!r}: no answer to question {text!r}")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise FrameError(
                f"requirement {req_id!r}: the answer to {text!r} must be a list of option labels"
            )
        options = [o["label"] for o in question["options"]]
        wrong = [x for x in labels if x not in options]
        if wrong:
            raise FrameError(
                f"requirement {req_id!r}: {wrong[0]!r} is not an option of {text!r} "
                f"(options: {', '.join(options)})"
            )
        if len(labels) > 1 and not question["multi_select"]:
            raise FrameError(f"requirement {req_id!r}: question {text!r} takes one option")
        out[text] = labels
    return out


def _clean(value: Any) -> Any:
    """`value` with lone surrogates replaced in every string (agno stores and sends it)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v) for k, v in value.items()}
    return value


def apply(requirement: Any, decision: dict[str, Any]) -> None:
    """Resolve an agno RunRequirement with a checked decision."""
    if "approve" in decision:
        if decision["approve"]:
            requirement.confirm()
        else:
            requirement.reject(decision.get("note") or REJECTED_NOTE)
    elif "result" in decision:
        requirement.set_external_execution_result(decision["result"])
    elif requirement.pause_type == "user_feedback":
        requirement.provide_user_feedback(decision["values"])
    else:
        requirement.provide_user_input(decision["values"])


def apply_to_output(output: Any, requirements: list[Any]) -> None:
    """Put resolved requirements into agno's paused RunOutput, as agno does itself when it
    loads the run by id (agent/_run.py _apply_requirement_tools): a run continued from its
    RunOutput (an agent without a db) reads the decisions from its tools."""
    output.requirements = requirements
    updated = {r.tool_execution.tool_call_id: r.tool_execution for r in requirements}
    output.tools = [
        updated.get(t.tool_call_id, t) if t.result is None else t for t in output.tools or []
    ]


def settled_calls(requirement: dict[str, Any], decision: dict[str, Any]) -> list[Event]:
    """The tool_call and tool_result the server writes itself for a call that agno settles
    without tool events: a rejected one (an error result with the note), one run elsewhere
    (its result) and an answer to agno's built-in get_user_input / ask_user (the answers as
    JSON). An approved call or an answered tool of the agent's own runs in agno, which
    reports it."""
    if decision.get("approve") is False:
        note = decision.get("note")
        output, is_error = f"{REJECTED_PREFIX}: {note}" if note else f"{REJECTED_PREFIX}.", True
    elif "result" in decision:
        output, is_error = decision["result"], False
    elif requirement["kind"] == "user_feedback" or requirement["tool_name"] == BUILTIN_INPUT:
        # agno's built-ins: it hands the model the answers without running a tool
        output, is_error = json.dumps(decision["values"], ensure_ascii=False), False
    else:
        return []
    call_id, name = requirement["call_id"], requirement["tool_name"]
    now = time.time()
    return [
        protocol.tool_call(name, requirement["argument"], call_id, now),
        protocol.tool_result(call_id, name, output, is_error, now),
    ]


def requirements_of(log_events: list[str]) -> list[dict[str, Any]]:
    """The open requirements of a paused run, from its encoded events: the last run_paused's
    (a run paused twice has a run_resumed between)."""
    for text in reversed(log_events):
        if '"type":"run_paused"' in text:
            event = json.loads(text)
            return list(event["requirements"])
    return []
