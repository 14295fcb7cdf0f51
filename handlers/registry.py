"""The one place handlers are registered: ``@handler(...)`` and lookup by intent."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

import handlers
from handlers.base import HandlerContext, HandlerSpec, Reply, Risk, Slot

_REGISTRY: dict[str, HandlerSpec] = {}
_INFRA_MODULES = {"base", "registry"}
_loaded = False


def handler(
    intent: str,
    *,
    slots: tuple[Slot, ...] | list[Slot] = (),
    requires_auth: bool = False,
    risk: Risk = Risk.LOW,
    description: str = "",
    confirm: Callable[[HandlerContext], str] | None = None,
    needs_otp: Callable[[HandlerContext], bool] | None = None,
    replayable: bool = False,
    topic: str = "",
    followup: Callable[[HandlerContext], Reply | None] | None = None,
    extract: Callable[[str], dict[str, Any]] | None = None,
) -> Callable[[Callable[[HandlerContext], Reply]], Callable[[HandlerContext], Reply]]:
    """Register the decorated function as the handler of ``intent``."""

    def decorate(fn: Callable[[HandlerContext], Reply]) -> Callable[[HandlerContext], Reply]:
        if intent in _REGISTRY and _REGISTRY[intent].fn is not fn:
            raise ValueError(f"intent {intent!r} already has a handler ({_REGISTRY[intent].fn.__module__})")
        _REGISTRY[intent] = HandlerSpec(
            intent=intent,
            fn=fn,
            slots=tuple(slots),
            requires_auth=requires_auth,
            risk=risk,
            description=description or (fn.__doc__ or "").strip().splitlines()[0] if (description or fn.__doc__) else "",
            confirm=confirm,
            needs_otp=needs_otp,
            replayable=replayable,
            topic=topic,
            followup=followup,
            extract=extract,
        )
        return fn

    return decorate


def load_handlers() -> dict[str, HandlerSpec]:
    """Import every module in the ``handlers`` package so their decorators run."""
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(handlers.__path__):
            if info.name not in _INFRA_MODULES and not info.name.startswith("_"):
                importlib.import_module(f"handlers.{info.name}")
        _loaded = True
    return dict(_REGISTRY)


def get_handler(intent: str) -> HandlerSpec | None:
    """The handler registered for ``intent`` (after loading all handler modules)."""
    return load_handlers().get(intent)


def all_handlers() -> dict[str, HandlerSpec]:
    """Every registered handler by intent name."""
    return load_handlers()


def describe() -> list[dict[str, Any]]:
    """A table of handlers for docs and the UI."""
    return [
        {"intent": s.intent, "risk": s.risk.value, "requires_auth": s.requires_auth,
         "slots": [sl.name for sl in s.slots], "description": s.description}
        for s in load_handlers().values()
    ]
