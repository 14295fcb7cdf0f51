"""The import graph has no cycles, in-function imports included (issue 20): each module can be
read, tested and replaced knowing only what is below it. ``lint-imports`` checks the layers.
Imports sit at module top; one kept inside a function says why in a comment (docs/architecture.md)."""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

import grimp

from tests.conftest import ROOT

PACKAGES = ("app", "handlers", "retrieval", "privacy", "provenance", "models")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    assert _cycles(graph) == []


# A linter pragma (``# noqa: ANN001``, ``# type: ignore``) is about its line's code, not about an import.
_PRAGMA = re.compile(r"#\s*(noqa|type:|pragma|pylint:|fmt:)", re.IGNORECASE)
_BARE_PRAGMA = re.compile(r"#\s*(noqa(:\s*[A-Z0-9, ]*)?|type:\s*ignore(\[[^\]]*\])?|pragma:[^-]*)\s*$", re.IGNORECASE)


def _comments(source: str) -> dict[int, str]:
    """Comment text by line number."""
    return {tok.start[0]: tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT}


def _function_import_blocks(tree: ast.Module) -> list[list[ast.Import | ast.ImportFrom]]:
    """Every run of consecutive import statements in a body inside a function (nested ones too)."""
    blocks: dict[int, list[ast.Import | ast.ImportFrom]] = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            for field in ("body", "orelse", "finalbody"):
                body = getattr(node, field, None)
                if not isinstance(body, list):  # a lambda's or an if-expression's body is an expression
                    continue
                run: list[ast.Import | ast.ImportFrom] = []
                for stmt in [*body, None]:
                    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                        run.append(stmt)
                    elif run:
                        blocks.setdefault(run[0].lineno, run)
                        run = []
    return list(blocks.values())


def uncommented_function_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``path:line: import`` for each in-function import whose block (the run of imports it is in)
    has no comment on its lines, nor on the line above it; a bare linter pragma does not count."""
    source = path.read_text(encoding="utf-8")
    comments = _comments(source)
    bare = []
    for block in _function_import_blocks(ast.parse(source)):
        above = comments.get(block[0].lineno - 1, "")  # often the def line, whose pragmas are about the signature
        if (above and not _PRAGMA.match(above)) or any(
                not _BARE_PRAGMA.match(comments[line]) for line in range(block[0].lineno, block[-1].end_lineno + 1)
                if line in comments):
            continue
        bare += [f"{path.relative_to(root)}:{stmt.lineno}: {ast.unparse(stmt)}" for stmt in block]
    return bare


def test_in_function_imports_say_why() -> None:
    """An import inside a function is allowed only to keep a heavy stack (torch, sklearn, Chainlit,
    the LLM …) off a light command's start-up, and its comment says so; light ones go to the top."""
    bare = [hit for pkg in PACKAGES for path in sorted((ROOT / pkg).rglob("*.py"))
            for hit in uncommented_function_imports(path)]
    assert bare == [], ("imports sit at module top; one kept in a function for a heavy stack says why "
                        "in a comment (`import torch  # heavy: only training needs it`):\n" + "\n".join(bare))


def test_the_import_comment_check_sees_a_bare_import(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "def light():  # noqa: ANN201\n    import json\n\n    return json\n\n\n"
        "def heavy():\n    # heavy: only training needs it\n    import torch\n    import numpy\n\n    return torch, numpy\n\n\n"
        "def inline():\n    import faiss  # heavy: only indexing\n    return faiss\n\n\n"
        "def pragma():\n    import yaml  # noqa: F401\n", encoding="utf-8")
    assert uncommented_function_imports(tmp_path / "m.py", root=tmp_path) == ["m.py:2: import json", "m.py:21: import yaml"]
