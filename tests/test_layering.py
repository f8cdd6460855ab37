"""The backstop package is layered, dependencies pointing one way (issue 10):

    core  <-  client  <-  keeper, sim        core  <-  reporting        core  <-  risk  <-  sim
    dashboard (the top): may import every other layer

risk (the numpy fund-sizing model) never needs a chain; core never imports ape (directly or through a dependency), so order signing, units and the
margin maths work without a provider; no layer imports scripts, bots or tests.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "backstop"
LAYERS = ("core", "client", "keeper", "sim", "reporting", "risk", "dashboard")
# layer -> the backstop layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "client": {"core"},
    "keeper": {"core", "client"},
    "sim": {"core", "client", "keeper", "risk", "reporting"},
    "reporting": {"core"},
    "risk": {"core"},
    "dashboard": {"core", "client", "keeper", "sim", "reporting", "risk"},
}
OUTSIDE = ("scripts", "bots", "tests", "conftest")

NO_APE = (
    "import sys, pkgutil, importlib, backstop.core\n"
    "for m in pkgutil.walk_packages(backstop.core.__path__, 'backstop.core.'):\n"
    "    importlib.import_module(m.name)\n"
    "loaded = [m for m in sys.modules if m == 'ape' or m.startswith('ape.') or m.startswith('ape_')]\n"
    "assert not loaded, loaded\n"
)


def _layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def _imported_modules(path: Path) -> list[str]:
    """Absolute module names of every import statement in `path` (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return names


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def test_every_module_is_in_a_layer():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py"], f"modules outside a layer: {top}"
    assert {_layer_of(p) for p in _modules()} == set(LAYERS)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path):
    layer = _layer_of(path)
    wrong = []
    for name in _imported_modules(path):
        parts = name.split(".")
        if parts[0] in OUTSIDE:
            wrong.append(name)
        elif parts[0] == "backstop" and len(parts) > 1:
            target = parts[1]
            if target not in LAYERS:
                wrong.append(name)  # a top-level backstop module, or an unknown one
            elif target != layer and target not in ALLOWED[layer]:
                wrong.append(name)
        elif layer == "core" and (parts[0] == "ape" or parts[0].startswith("ape_")):
            wrong.append(name)
    assert not wrong, f"{path.relative_to(ROOT)} ({layer}) imports {wrong}"


def test_core_does_not_load_ape():
    """Imported in a fresh interpreter (this one has ape loaded already)."""
    for code in (NO_APE, "import backstop.core, sys; assert not any(m == 'ape' or m.startswith('ape.') "
                         "or m.startswith('ape_') for m in sys.modules)"):
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
