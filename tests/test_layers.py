"""The import contract between securecalc's layers, checked on the source without importing it.

Every module under ``securecalc/`` is parsed; every import counts, including imports inside
functions, except those under ``if TYPE_CHECKING:`` (they never run). The rules:

a. ``securecalc.core`` is pure: no network, process, database, crypto or MPC/HE library, and no
   securecalc package outside core except ``securecalc.errors``.
b. Only ``securecalc.transport`` imports grpc, protobuf and the generated code.
c. Engines do not import the roles (node, coordinator, compute) or what wires them together.
d. Roles reach transport only through ``transport.interface`` and ``transport.tls``.
e. No import cycles between modules.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "securecalc"


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to an absolute dotted name."""

    file: str
    line: int
    importer: str
    target: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.target}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _runtime_nodes(body: Iterable[ast.stmt]) -> Iterator[ast.AST]:
    """Every node reachable from ``body`` except the bodies of ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    drop = node.level - 1 if is_package else node.level
    base = base[: len(base) - drop]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, root: Path, modules: frozenset[str]) -> list[Import]:
    """The imports of one file; ``from p import m`` names module ``p.m`` when it exists."""
    importer = module_name(path, root)
    is_package = path.name == "__init__.py"
    file = str(path.relative_to(root))
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=file)
    found: list[Import] = []
    for node in _runtime_nodes(tree.body):
        if isinstance(node, ast.Import):
            found.extend(Import(file, node.lineno, importer, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, importer, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in modules else base
                found.append(Import(file, node.lineno, importer, target))
    return sorted(set(found), key=lambda i: (i.file, i.line, i.target))


@dataclass(frozen=True)
class Graph:
    """All modules of a package and their imports."""

    files: dict[str, str]  # module -> file path relative to the root
    imports: list[Import]

    @classmethod
    def scan(cls, root: Path, package: str, exclude: tuple[str, ...] = ()) -> Graph:
        every = sorted((root / package).rglob("*.py"))
        modules = frozenset(module_name(p, root) for p in every)
        paths = [p for p in every if not _any_within(module_name(p, root), exclude)]
        files = {module_name(p, root): str(p.relative_to(root)) for p in paths}
        imports = [i for p in paths for i in imports_of(p, root, modules)]
        return cls(files, imports)

    def edges(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {m: set() for m in self.files}
        for i in self.imports:
            if i.target in self.files and i.target != i.importer:
                out[i.importer].add(i.target)
        return out


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _any_within(name: str, prefixes: Iterable[str]) -> bool:
    return any(_within(name, p) for p in prefixes)


def violations(
    graph: Graph,
    importers: Iterable[str],
    forbidden: Iterable[str],
    allowed: Iterable[str] = (),
    importers_exempt: Iterable[str] = (),
) -> list[str]:
    """Imports by modules under ``importers`` of names under ``forbidden`` but not ``allowed``."""
    importers, forbidden, allowed = tuple(importers), tuple(forbidden), tuple(allowed)
    exempt = tuple(importers_exempt)
    return [
        str(i)
        for i in graph.imports
        if _any_within(i.importer, importers)
        and not _any_within(i.importer, exempt)
        and _any_within(i.target, forbidden)
        and not _any_within(i.target, allowed)
    ]


def cycles(graph: Graph) -> list[str]:
    """One shortest cycle through each module that lies on a cycle, deduplicated, as file chains."""
    edges = graph.edges()
    seen: set[frozenset[str]] = set()
    chains: list[str] = []
    for start in sorted(edges):
        path = _shortest_cycle(edges, start)
        if path is None or frozenset(path) in seen:
            continue
        seen.add(frozenset(path))
        chains.append(" -> ".join(graph.files[m] for m in [*path, path[0]]))
    return chains


def _shortest_cycle(edges: dict[str, set[str]], start: str) -> list[str] | None:
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(edges[node]):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return path[::-1]
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return None


# --- the contract ----------------------------------------------------------------------------

CORE = f"{PACKAGE}.core"
TRANSPORT = f"{PACKAGE}.transport"
ENGINES = f"{PACKAGE}.engines"
ROLES = tuple(f"{PACKAGE}.{r}" for r in ("node", "coordinator", "compute"))
IO_AND_CRYPTO = (
    "grpc", "grpc_health", "google.protobuf", "mpyc", "tenseal", "gmpy2", "cryptography",
    "socket", "subprocess", "multiprocessing", "asyncio", "sqlite3", "urllib", "http",
)  # fmt: skip
WIRE = ("grpc", "grpc_health", "google.protobuf", f"{TRANSPORT}.proto")
ABOVE_ENGINES = tuple(
    f"{PACKAGE}.{m}" for m in ("node", "coordinator", "compute", "transport", "cli", "cluster",
                               "demo", "launch")
)  # fmt: skip
ROLE_TRANSPORT = (f"{TRANSPORT}.interface", f"{TRANSPORT}.tls")
GENERATED = (f"{TRANSPORT}.proto",)


def check_core_is_pure(graph: Graph) -> list[str]:
    return violations(graph, [CORE], IO_AND_CRYPTO) + violations(
        graph, [CORE], [PACKAGE], allowed=[CORE, f"{PACKAGE}.errors"]
    )


def check_only_transport_speaks_grpc(graph: Graph) -> list[str]:
    return violations(graph, [PACKAGE], WIRE, importers_exempt=[TRANSPORT])


def check_engines_below_roles(graph: Graph) -> list[str]:
    return violations(graph, [ENGINES], ABOVE_ENGINES)


def check_roles_use_transport_interface(graph: Graph) -> list[str]:
    return violations(graph, ROLES, [TRANSPORT], allowed=ROLE_TRANSPORT)


def check_no_cycles(graph: Graph) -> list[str]:
    return cycles(graph)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph.scan(ROOT, PACKAGE, exclude=GENERATED)


def _assert_none(found: list[str], rule: str) -> None:
    assert not found, f"{rule}:\n  " + "\n  ".join(found)


def test_core_imports_no_io_crypto_or_outer_layers(graph: Graph) -> None:
    _assert_none(check_core_is_pure(graph), "core must stay pure")


def test_only_transport_imports_grpc_and_generated_code(graph: Graph) -> None:
    _assert_none(check_only_transport_speaks_grpc(graph), "only transport may speak grpc")


def test_engines_do_not_import_roles(graph: Graph) -> None:
    _assert_none(check_engines_below_roles(graph), "engines must not import roles")


def test_roles_reach_transport_only_through_its_interface(graph: Graph) -> None:
    _assert_none(
        check_roles_use_transport_interface(graph), "roles may use transport.interface/tls only"
    )


def test_no_import_cycles(graph: Graph) -> None:
    _assert_none(check_no_cycles(graph), "import cycles")


# --- the checker finds what it must ----------------------------------------------------------


def _plant(root: Path, files: dict[str, str]) -> Graph:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Graph.scan(root, PACKAGE, exclude=GENERATED)


def test_checker_finds_planted_violations(tmp_path: Path) -> None:
    graph = _plant(
        tmp_path,
        {
            "securecalc/__init__.py": "",
            "securecalc/errors.py": "",
            "securecalc/core/__init__.py": "",
            "securecalc/core/a.py": (
                "from typing import TYPE_CHECKING\n"
                "from . import b\n"
                "from ..errors import X\n"
                "if TYPE_CHECKING:\n"
                "    import grpc\n"
                "def f():\n"
                "    import asyncio.events\n"
            ),
            "securecalc/core/b.py": "from securecalc.core.a import f\nimport securecalc.node.x\n",
            "securecalc/node/__init__.py": "",
            "securecalc/node/x.py": "from securecalc.transport import proto, tls\nimport grpc\n",
            "securecalc/engines/__init__.py": "",
            "securecalc/engines/e.py": "from securecalc import node\n",
            "securecalc/transport/__init__.py": "",
            "securecalc/transport/tls.py": "import grpc\n",
            "securecalc/transport/proto/__init__.py": "import securecalc.core.a\n",
        },
    )
    a, b, x = "securecalc/core/a.py", "securecalc/core/b.py", "securecalc/node/x.py"
    assert check_core_is_pure(graph) == [f"{a}:7 imports asyncio.events",
                                         f"{b}:2 imports securecalc.node.x"]  # fmt: skip
    assert check_only_transport_speaks_grpc(graph) == [
        f"{x}:1 imports securecalc.transport.proto",
        f"{x}:2 imports grpc",
    ]
    assert check_engines_below_roles(graph) == ["securecalc/engines/e.py:1 imports securecalc.node"]
    assert check_roles_use_transport_interface(graph) == [
        f"{x}:1 imports securecalc.transport.proto"
    ]
    assert check_no_cycles(graph) == [f"{a} -> {b} -> {a}"]
