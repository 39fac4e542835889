"""The package layout's one rule: deltakit_nb/kernel/ (the notebook kernel's process) never
imports deltakit_nb/server/ or deltakit_nb/stores/ (the Jupyter server's), nor the other way
round; the top-level modules (protocol, adapter, ...) are shared and import neither."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "deltakit_nb"
SERVER_SIDE = ("server", "stores")
KERNEL_SIDE = ("kernel",)


def side_of(module: str) -> str:
    """'server', 'kernel' or 'shared' for a dotted module name under deltakit_nb."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in SERVER_SIDE:
        return "server"
    if len(parts) > 1 and parts[1] in KERNEL_SIDE:
        return "kernel"
    return "shared"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[str]:
    """Every deltakit_nb module `path` imports, at the top or inside functions, resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("deltakit_nb")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("deltakit_nb"):
                continue
            if node.module is None or target == "deltakit_nb":  # from . import x: x is a module
                found += [f"{target}.{a.name}" for a in node.names]
            else:
                found.append(target)
    return found


# The package's own __init__ names both sides (lazily, for its entry points), by design.
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def test_every_side_is_present() -> None:
    sides = {side_of(module_name(p)) for p in MODULES}
    assert sides == {"server", "kernel", "shared"}


def test_side_of() -> None:
    assert side_of("deltakit_nb.server.runs") == "server"
    assert side_of("deltakit_nb.stores.sqlite") == "server"
    assert side_of("deltakit_nb.kernel.widget") == "kernel"
    assert side_of("deltakit_nb.protocol") == "shared"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_crosses_between_server_and_kernel(path: Path) -> None:
    own = side_of(module_name(path))
    crossing = [
        m
        for m in imported_modules(path)
        if side_of(m) not in ("shared", own) or (own == "shared" and side_of(m) != "shared")
    ]
    assert crossing == [], f"{module_name(path)} ({own} side) imports {crossing}"
