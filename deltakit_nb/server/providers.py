"""Real model providers through agno, chosen by a spec string instead of code.

A spec is ``"PROVIDER:MODEL_ID"`` (only the first colon splits, so ``"ollama:llama3.2:3b"``
works). It comes from the ``DELTAKIT_MODEL`` environment variable or the
``DeltakitApp.model`` trait, and the server's ``assistant`` agent runs on it:

=====================  =====================================  ==================================
spec                   agno model                             needs
=====================  =====================================  ==================================
openai:gpt-4.1-mini    ``OpenAIChat``                         OPENAI_API_KEY, ``[openai]`` extra
openrouter:ORG/MODEL   ``OpenRouter``                         OPENROUTER_API_KEY, ``[openai]``
anthropic:claude-…     ``Claude``                             ANTHROPIC_API_KEY (or
                                                              ANTHROPIC_AUTH_TOKEN),
                                                              ``[anthropic]``
ollama:llama3.2        ``Ollama``                             a running Ollama, ``[ollama]``
openai-compatible:M    ``OpenAILike`` at DELTAKIT_BASE_URL    the base URL, ``[openai]``;
                                                              DELTAKIT_API_KEY if it wants one
offline                the offline demo model                 nothing
=====================  =====================================  ==================================

``DELTAKIT_BASE_URL`` (or the ``base_url`` argument) also points ``openai``/``openrouter`` at a
proxy, ``anthropic`` at another endpoint and ``ollama`` at another host. An
``openai-compatible`` server never gets ``OPENAI_API_KEY``: a local server must not receive
the real OpenAI key by accident; give it ``DELTAKIT_API_KEY`` instead.

Keys and packages are checked when the model is built (at the start of a run), so a missing
one fails the run at once with a message naming it, rather than with a network error later.
Nothing here contacts a provider: agno opens its client on the first request.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .agents import AgentError, telemetry_opted_in

if TYPE_CHECKING:
    from agno.agent import Agent
    from agno.models.base import Model

MODEL_ENV = "DELTAKIT_MODEL"
BASE_URL_ENV = "DELTAKIT_BASE_URL"
API_KEY_ENV = "DELTAKIT_API_KEY"

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "MODEL_ENV",
    "PROVIDERS",
    "ModelPlan",
    "Provider",
    "ProviderError",
    "assistant_agent",
    "build_model",
    "plan_model",
]


class ProviderError(AgentError):
    """A model spec that cannot be turned into a model; the message says what is missing."""


@dataclass(frozen=True)
class Provider:
    name: str
    model_class: str  # "module:Class" of the agno model
    package: str = ""  # import name of the client library agno needs ("" for none)
    extra: str = ""  # the deltakit_nb extra that installs it
    key_envs: tuple[str, ...] = ()  # any one of these set is enough; () for no key
    base_url_kwarg: str = "base_url"  # how the model class takes a base URL ("" for not at all)
    needs_base_url: bool = False
    default_id: str = ""  # used when the spec names no model


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "openai",
            "agno.models.openai.chat:OpenAIChat",
            "openai",
            "openai",
            ("OPENAI_API_KEY",),
        ),
        Provider(
            "openrouter",
            "agno.models.openrouter.openrouter:OpenRouter",
            "openai",
            "openai",
            ("OPENROUTER_API_KEY",),
        ),
        Provider(
            "anthropic",
            "agno.models.anthropic.claude:Claude",
            "anthropic",
            "anthropic",
            ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
            base_url_kwarg="client_params.base_url",
        ),
        Provider("ollama", "agno.models.ollama.chat:Ollama", "ollama", "ollama", (), "host"),
        Provider(
            "openai-compatible",
            "agno.models.openai.like:OpenAILike",
            "openai",
            "openai",
            needs_base_url=True,
        ),
        Provider(
            "offline",
            "deltakit_nb.offline:OfflineModel",
            base_url_kwarg="",
            default_id="offline",
        ),
    )
}
ALIASES = {
    "openai_compatible": "openai-compatible",
    "openai-like": "openai-compatible",
    "openailike": "openai-compatible",
    "claude": "anthropic",
}


@dataclass(frozen=True)
class ModelPlan:
    """What `build_model` will construct: an agno model class and its keyword arguments."""

    spec: str
    provider: Provider
    model_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def model_class(self) -> str:
        return self.provider.model_class

    def missing(self, env: Mapping[str, str] | None = None) -> list[str]:
        """What stops this model from working here, one clear sentence each (empty: nothing)."""
        env = os.environ if env is None else env
        problems: list[str] = []
        p = self.provider
        if p.key_envs and not self.kwargs.get("api_key"):
            if not any(env.get(name, "").strip() for name in p.key_envs):
                names = " or ".join(p.key_envs)
                problems.append(
                    f"{names} is not set (set it in the environment of the Jupyter server)"
                )
        if p.package and importlib.util.find_spec(p.package) is None:
            problems.append(
                f"the {p.package!r} package is not installed: pip install 'deltakit_nb[{p.extra}]'"
            )
        return problems


def plan_model(
    spec: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ModelPlan:
    """Parse a spec into a plan, without importing anything.

    `spec`, `base_url` and `api_key` default to DELTAKIT_MODEL, DELTAKIT_BASE_URL and (for
    `openai-compatible` only) DELTAKIT_API_KEY; an empty string means "none", not "default".
    An `api_key` given here is passed to the model; otherwise agno reads the provider's own
    environment variable when it opens its client.
    """
    env = os.environ if env is None else env
    if spec is None:
        spec = env.get(MODEL_ENV, "")
    spec = spec.strip()
    if not spec:
        raise ProviderError(
            f"no model configured: set {MODEL_ENV}, e.g. {MODEL_ENV}=openai:gpt-4.1-mini"
        )
    name, _, model_id = spec.partition(":")
    key = name.strip().lower()
    provider = PROVIDERS.get(ALIASES.get(key, key))
    if provider is None:
        known = ", ".join(PROVIDERS)
        raise ProviderError(
            f"unknown model provider {name!r} in {spec!r}; known providers: {known} "
            f"(a spec is 'provider:model', e.g. 'openai:gpt-4.1-mini')"
        )
    model_id = model_id.strip() or provider.default_id
    if not model_id:
        raise ProviderError(f"model spec {spec!r} names no model: write '{provider.name}:MODEL_ID'")
    if base_url is None:
        base_url = env.get(BASE_URL_ENV, "")
    base_url = base_url.strip()
    if provider.needs_base_url and not base_url:
        raise ProviderError(
            f"{provider.name} model {model_id!r} needs the server's base URL: set "
            f"{BASE_URL_ENV}, e.g. {BASE_URL_ENV}=http://localhost:8000/v1"
        )
    if api_key is None and provider.name == "openai-compatible":
        api_key = env.get(API_KEY_ENV, "")

    kwargs: dict[str, Any] = {"id": model_id}
    if base_url and provider.base_url_kwarg:
        outer, _, inner = provider.base_url_kwarg.partition(".")
        kwargs[outer] = {inner: base_url} if inner else base_url
    if api_key:
        kwargs["api_key"] = api_key
    return ModelPlan(spec, provider, model_id, kwargs)


def build_model(
    spec: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Model:
    """An agno Model for `spec` (see the module docstring), or a ProviderError naming every
    missing key and package. Makes no network call."""
    plan = plan_model(spec, base_url=base_url, api_key=api_key, env=env)
    problems = plan.missing(env)
    if problems:
        raise ProviderError(f"model {plan.spec!r}: " + "; ".join(problems))
    module_name, _, class_name = plan.model_class.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        extra = plan.provider.extra
        hint = f" (pip install 'deltakit_nb[{extra}]')" if extra else ""
        raise ProviderError(
            f"model {plan.spec!r}: cannot import {plan.model_class}: {exc}{hint}"
        ) from exc
    model: Model = cls(**plan.kwargs)
    return model


ASSISTANT_INSTRUCTIONS = [
    "You are a helpful assistant in a Jupyter notebook. Answer in concise markdown.",
    "Use the calculator tool for arithmetic and the current_time tool for the date or time.",
]


def assistant_agent(
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
) -> Agent:
    """The `assistant` agent: the demo's calculator and clock tools on a real model.

    With no arguments it reads DELTAKIT_MODEL and DELTAKIT_BASE_URL, so it can also be named in
    configuration as ``"deltakit_nb.server.providers:assistant_agent"``.
    """
    from agno.agent import Agent

    from ..offline import calculator, current_time

    llm = build_model(model, base_url=base_url, api_key=api_key)
    return Agent(
        name="assistant",
        model=llm,
        tools=[calculator, current_time],
        instructions=ASSISTANT_INSTRUCTIONS,
        markdown=True,
        description=f"An assistant with a calculator and a clock, on {llm.id}.",
        telemetry=telemetry_opted_in(),
    )
