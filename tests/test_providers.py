"""Model specs -> agno models (DELTAKIT_MODEL), and the `assistant` agent. No network: building an
agno model opens no connection, and a run that lacks a key fails before any request."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest
from conftest import TEST_AGENTS
from wsclient import recv, recv_until_terminal, send

from deltakit_nb.server.agents import DEMO_SPEC, AgentCatalog, AgentError
from deltakit_nb.server.providers import (
    PROVIDERS,
    ModelPlan,
    Provider,
    ProviderError,
    assistant_agent,
    build_model,
    plan_model,
)

KEY_VARS = (
    "OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OLLAMA_API_KEY",
    "DELTAKIT_MODEL",
    "DELTAKIT_BASE_URL",
    "DELTAKIT_API_KEY",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real key or model from the developer's shell leaks into a test."""
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


# Plans: which agno class, with which arguments (nothing imported).


@pytest.mark.parametrize(
    ("spec", "model_class", "kwargs"),
    [
        ("openai:gpt-4.1-mini", "agno.models.openai.chat:OpenAIChat", {"id": "gpt-4.1-mini"}),
        (
            "openrouter:moonshotai/kimi-k2.5",
            "agno.models.openrouter.openrouter:OpenRouter",
            {"id": "moonshotai/kimi-k2.5"},
        ),
        (
            "anthropic:claude-sonnet-4-5",
            "agno.models.anthropic.claude:Claude",
            {"id": "claude-sonnet-4-5"},
        ),
        (
            "claude:claude-haiku-4-5",
            "agno.models.anthropic.claude:Claude",
            {"id": "claude-haiku-4-5"},
        ),
        ("ollama:llama3.2", "agno.models.ollama.chat:Ollama", {"id": "llama3.2"}),
        ("ollama:llama3.2:3b", "agno.models.ollama.chat:Ollama", {"id": "llama3.2:3b"}),
        (" OpenAI : gpt-4o ", "agno.models.openai.chat:OpenAIChat", {"id": "gpt-4o"}),
        ("offline", "deltakit_nb.offline:OfflineModel", {"id": "offline"}),
    ],
)
def test_plan_picks_the_agno_class_and_id(
    spec: str, model_class: str, kwargs: dict[str, Any]
) -> None:
    plan = plan_model(spec)
    assert plan.model_class == model_class
    assert plan.kwargs == kwargs


def test_every_agno_model_module_exists() -> None:
    # The classes import their client package at import time, so check the files, not imports.
    from pathlib import Path

    agno_spec = importlib.util.find_spec("agno")
    assert agno_spec is not None and agno_spec.submodule_search_locations
    root = Path(next(iter(agno_spec.submodule_search_locations))).parent
    for provider in PROVIDERS.values():
        module, _, cls = provider.model_class.partition(":")
        if not module.startswith("agno."):
            continue
        path = root / (module.replace(".", "/") + ".py")
        assert f"class {cls}(" in path.read_text(encoding="utf-8"), provider


def test_base_url_goes_where_each_class_takes_it() -> None:
    url = "http://localhost:8000/v1"
    assert plan_model("openai:gpt-4.1-mini", base_url=url).kwargs["base_url"] == url
    assert plan_model("openrouter:x/y", base_url=url).kwargs["base_url"] == url
    assert plan_model("anthropic:c", base_url=url).kwargs["client_params"] == {"base_url": url}
    assert plan_model("ollama:llama3.2", base_url="http://box:11434").kwargs == {
        "id": "llama3.2",
        "host": "http://box:11434",
    }
    assert plan_model("offline", base_url=url).kwargs == {"id": "offline"}


def test_openai_compatible_server_by_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELTAKIT_BASE_URL", "http://localhost:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")
    plan = plan_model("openai-compatible:Qwen/Qwen2.5-7B-Instruct")
    assert plan.model_class == "agno.models.openai.like:OpenAILike"
    # The real OpenAI key is never handed to some other server.
    assert plan.kwargs == {"id": "Qwen/Qwen2.5-7B-Instruct", "base_url": "http://localhost:8000/v1"}
    assert plan.provider.key_envs == ()
    monkeypatch.setenv("DELTAKIT_API_KEY", "local-secret")
    assert plan_model("openai-like:m").kwargs["api_key"] == "local-secret"
    assert (
        plan_model("openai_compatible:m", base_url="http://h/v1").kwargs["base_url"]
        == "http://h/v1"
    )


def test_openai_compatible_without_base_url_says_how_to_set_it() -> None:
    with pytest.raises(ProviderError, match="DELTAKIT_BASE_URL") as err:
        plan_model("openai-compatible:my-model")
    assert "http://localhost:8000/v1" in str(err.value)


def test_spec_and_base_url_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELTAKIT_MODEL", "ollama:qwen3")
    monkeypatch.setenv("DELTAKIT_BASE_URL", "http://gpu-box:11434")
    plan = plan_model()
    assert plan.kwargs == {"id": "qwen3", "host": "http://gpu-box:11434"}
    # An explicit empty base URL means none.
    assert plan_model(base_url="").kwargs == {"id": "qwen3"}
    assert plan_model("openai:o", env={}).kwargs == {"id": "o"}


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("", "no model configured: set DELTAKIT_MODEL"),
        ("   ", "no model configured"),
        ("gpt-4.1-mini", "unknown model provider 'gpt-4.1-mini'"),
        ("mistral:large", "known providers: openai, openrouter, anthropic, ollama"),
        ("openai:", "names no model: write 'openai:MODEL_ID'"),
        ("openrouter:  ", "names no model"),
    ],
)
def test_bad_specs_are_explained(spec: str, needle: str) -> None:
    with pytest.raises(ProviderError) as err:
        plan_model(spec)
    assert needle in str(err.value)
    assert isinstance(err.value, AgentError)


# What is missing: keys and packages, named up front.


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("openai:gpt-4.1-mini", "OPENAI_API_KEY is not set"),
        ("openrouter:moonshotai/kimi-k2.5", "OPENROUTER_API_KEY is not set"),
        ("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN is not set"),
    ],
)
def test_missing_key_is_named(spec: str, key: str) -> None:
    with pytest.raises(ProviderError) as err:
        build_model(spec)
    message = str(err.value)
    assert message.startswith(f"model {spec!r}: {key}")
    assert "environment of the Jupyter server" in message
    package = PROVIDERS[spec.split(":")[0]].package
    assert ("pip install" in message) is not installed(package)


def test_a_key_from_either_variable_or_argument_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    assert plan_model("openai:m").missing({"OPENAI_API_KEY": "sk-x"}) in ([], [_no_pkg("openai")])
    assert plan_model("openai:m").missing({"OPENAI_API_KEY": "  "})[0].startswith("OPENAI_API_KEY")
    assert "ANTHROPIC" not in " ".join(
        plan_model("anthropic:c").missing({"ANTHROPIC_AUTH_TOKEN": "t"})
    )
    assert "OPENAI_API_KEY" not in " ".join(plan_model("openai:m", api_key="sk-arg").missing({}))
    assert plan_model("openai:m", api_key="sk-arg").kwargs["api_key"] == "sk-arg"
    assert plan_model("ollama:llama3.2").missing({}) in ([], [_no_pkg("ollama")])
    assert plan_model("offline").missing({}) == []


def _no_pkg(package: str) -> str:
    return f"the {package!r} package is not installed: pip install 'deltakit_nb[{package}]'"


def test_missing_package_is_named_with_the_extra_to_install() -> None:
    provider = Provider(
        "acme", "agno.models.acme:Acme", "acme_sdk_not_installed_xyz", "acme", ("ACME_KEY",)
    )
    plan = ModelPlan("acme:m1", provider, "m1", {"id": "m1"})
    assert plan.missing({"ACME_KEY": "k"}) == [
        "the 'acme_sdk_not_installed_xyz' package is not installed: pip install 'deltakit_nb[acme]'"
    ]
    both = plan.missing({})
    assert len(both) == 2 and both[0].startswith("ACME_KEY is not set")


def test_without_the_openai_package_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:  # as on a machine without the openai package
        return None if name == "openai" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(ProviderError) as err:
        build_model("openai:gpt-4.1-mini")
    assert str(err.value) == f"model 'openai:gpt-4.1-mini': {_no_pkg('openai')}"


# Building the real agno classes (only where the provider's package is installed).


def test_offline_spec_builds_the_offline_model() -> None:
    from deltakit_nb.offline import OfflineModel

    model = build_model("offline")
    assert isinstance(model, OfflineModel) and model.id == "offline"


@pytest.mark.parametrize(
    ("spec", "env", "cls", "attrs"),
    [
        (
            "openai:gpt-4.1-mini",
            {"OPENAI_API_KEY": "sk-test"},
            "OpenAIChat",
            {"id": "gpt-4.1-mini", "base_url": None},
        ),
        (
            "openrouter:moonshotai/kimi-k2.5",
            {"OPENROUTER_API_KEY": "sk-or"},
            "OpenRouter",
            {"id": "moonshotai/kimi-k2.5", "base_url": "https://openrouter.ai/api/v1"},
        ),
        (
            "openai-compatible:local-model",
            {"DELTAKIT_BASE_URL": "http://127.0.0.1:8000/v1"},
            "OpenAILike",
            {
                "id": "local-model",
                "base_url": "http://127.0.0.1:8000/v1",
                "api_key": "not-provided",
            },
        ),
        (
            "anthropic:claude-sonnet-4-5",
            {"ANTHROPIC_API_KEY": "sk-ant"},
            "Claude",
            {"id": "claude-sonnet-4-5"},
        ),
        ("ollama:llama3.2", {}, "Ollama", {"id": "llama3.2", "host": None}),
    ],
)
def test_real_agno_model_classes(
    monkeypatch: pytest.MonkeyPatch, spec: str, env: dict[str, str], cls: str, attrs: dict[str, Any]
) -> None:
    pytest.importorskip(PROVIDERS[spec.split(":")[0]].package)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    model = build_model(spec)
    assert type(model).__name__ == cls
    for name, value in attrs.items():
        assert getattr(model, name) == value, name
    assert model.get_client() is not None  # a client object; no request is made


# The assistant agent and the catalog.


def test_assistant_agent_has_the_demo_tools_on_the_chosen_model() -> None:
    agent = assistant_agent("offline")
    assert agent.name == "assistant" and agent.telemetry is False
    assert agent.model is not None and agent.model.id == "offline"
    assert [getattr(t, "__name__", t) for t in agent.tools or []] == ["calculator", "current_time"]


async def test_assistant_runs_with_tools_through_the_catalog() -> None:
    catalog = AgentCatalog({"demo": DEMO_SPEC}, "assistant", model="offline", entry_points=False)
    assert sorted(catalog.entries) == ["assistant", "demo"]
    agent = catalog.build("")
    output = await agent.arun("what is 6 * 7?")
    assert "42" in str(output.content)
    assert [t.tool_name for t in output.tools or []] == ["calculator"]


def test_catalog_assistant_without_key_fails_at_build_naming_the_key() -> None:
    catalog = AgentCatalog(
        {"demo": DEMO_SPEC}, "assistant", model="openrouter:moonshotai/kimi-k2.5"
    )
    with pytest.raises(AgentError, match="OPENROUTER_API_KEY is not set"):
        catalog.build("assistant")
    assert catalog.build("demo").name  # the offline demo still works


def test_catalog_passes_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELTAKIT_BASE_URL", "http://from-env:1/v1")
    explicit = AgentCatalog({}, "assistant", model="openai-compatible:m", model_base_url="")
    with pytest.raises(AgentError, match="needs the server's base URL"):
        explicit.build("assistant")
    from_env = AgentCatalog({}, "assistant", model="openai-compatible:m")
    if installed("openai"):
        agent = from_env.build("assistant")
        assert agent.model is not None and agent.model.base_url == "http://from-env:1/v1"
    else:
        with pytest.raises(AgentError, match="pip install 'deltakit_nb\\[openai\\]'"):
            from_env.build("assistant")


def test_configured_agents_win_over_the_model_assistant() -> None:
    catalog = AgentCatalog({"assistant": DEMO_SPEC}, "assistant", model="openai:gpt-4.1-mini")
    assert catalog.entries["assistant"].spec == DEMO_SPEC
    assert catalog.build("assistant").model is not None  # the demo, no key needed


def test_no_model_means_no_assistant() -> None:
    catalog = AgentCatalog({"demo": DEMO_SPEC}, "demo", entry_points=False)
    assert list(catalog.entries) == ["demo"]
    with pytest.raises(AgentError, match="unknown agent 'assistant'"):
        catalog.resolve_name("assistant")


# Through the server: the model trait makes `assistant` the default; a missing key fails the
# run at once with an error event that names it.


@pytest.fixture
def jp_server_config() -> dict[str, object]:
    return {
        "ServerApp": {"jpserver_extensions": {"deltakit_nb": True}},
        "DeltakitApp": {"agents": TEST_AGENTS, "model": "openai:gpt-4.1-mini"},
    }


async def test_server_run_without_key_ends_with_an_error_naming_it(
    jp_ws_fetch: Any, jp_fetch: Any
) -> None:
    listing = json.loads((await jp_fetch("deltakit", "agents")).body)
    assert listing["default"] == "assistant"
    names = [a["name"] for a in listing["agents"]]
    assert "assistant" in names and "demo" in names

    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": "what is 2 + 2?", "threadId": "no-key"})
    events = await recv(ws)
    assert events[0]["type"] == "run_started" and events[0]["agent"] == "assistant"
    events += await recv_until_terminal(ws)
    assert [e["type"] for e in events] == ["run_started", "error"]
    message = events[-1]["message"]
    assert "OPENAI_API_KEY is not set" in message and "openai:gpt-4.1-mini" in message
    run = json.loads((await jp_fetch("deltakit", "runs", events[0]["runId"])).body)
    assert run["status"] == "failed"

    # The demo agent is still there and still works without a key.
    await send(ws, {"message": "echo fine", "agent": "demo"})
    demo = await recv(ws)
    demo += await recv_until_terminal(ws)
    assert demo[-1]["type"] == "done" and demo[-1]["status"] == "completed"
    ws.close()
