"""The shape of the code, checked: no import cycles, one place that writes a
request's status, one way into the audit chain, layers that keep to themselves."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import lockbox

PACKAGE = Path(lockbox.__file__).parent
MIGRATIONS = PACKAGE / "store" / "migrations"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if MIGRATIONS in path.parents:
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))


def _imports(module: str) -> set[str]:
    """Every lockbox module `module` imports, wherever the import statement is
    (top level, inside functions, under `if TYPE_CHECKING:`)."""
    is_package = MODULES[module].name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in MODULES else base)
    return {t for t in targets if t in MODULES and t != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_import_graph_follows_from_imports_to_submodules() -> None:
    imports = _imports("lockbox.services.deps")
    assert "lockbox.services.group_commit" in imports
    assert "lockbox.clock" in imports


def test_no_import_cycle_anywhere_in_the_package() -> None:
    graph = {module: _imports(module) for module in MODULES}
    assert _cycles(graph) == []


def test_the_domain_imports_no_framework_and_no_other_layer() -> None:
    for module in MODULES:
        if not module.startswith("lockbox.domain"):
            continue
        for node in ast.walk(_tree(module)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                )
                for name in names:
                    top = (name or "").split(".")[0]
                    assert top not in {"strawberry", "tortoise", "starlette", "redis"}, module
                    if top == "lockbox":
                        assert (name or "").startswith("lockbox.domain"), (module, name)


def _calls(module: str) -> Iterator[tuple[str, ast.Call]]:
    """(enclosing function, call) for every call in `module`."""
    for function in ast.walk(_tree(module)):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    yield function.name, node


WRITE_METHODS = {"create", "bulk_create", "update", "get_or_create", "update_or_create", "save"}


# Models with a `status` of their own (a delivery's), not a request's.
OTHER_MODELS = {"Notification", "Webhook"}


def _root(node: ast.expr) -> str | None:
    """The name a call chain starts from: `AccessRequest` in
    `AccessRequest.filter(...).update(...)`."""
    while isinstance(node, ast.Attribute | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _status_writes(module: str) -> set[str]:
    """Functions of `module` that write a `status` (keyword to an ORM write,
    attribute assignment or setattr)."""
    places: set[str] = set()
    for function in ast.walk(_tree(module)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in WRITE_METHODS
                and any(k.arg == "status" for k in node.keywords)
                and _root(node.func) not in OTHER_MODELS
            ):
                places.add(function.name)
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Attribute) and t.attr == "status" for t in targets):
                    places.add(function.name)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "setattr"
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value == "status"
            ):
                places.add(function.name)
    return places


def test_one_function_writes_a_request_status() -> None:
    writers = {f"{module}.{function}" for module in MODULES for function in _status_writes(module)}
    # A new row starts in the lifecycle's initial status (lifecycle.initial_status:
    # PENDING, or AWAITING_PROVIDER_APPROVAL); every later status is a transition.
    assert writers == {
        "lockbox.store.queries.transition_request",
        "lockbox.store.queries.insert_request",
    }
    # ... and one service function calls it: the lifecycle's single write path.
    callers = {
        f"{module}.{function}"
        for module in MODULES
        for function, call in _calls(module)
        if isinstance(call.func, ast.Attribute) and call.func.attr == "transition_request"
    }
    assert callers == {"lockbox.services.requests._apply"}


def test_audit_events_are_appended_through_one_helper() -> None:
    callers = {
        f"{module}.{function}"
        for module in MODULES
        for function, call in _calls(module)
        if isinstance(call.func, ast.Attribute) and call.func.attr == "append_audit"
    }
    assert callers == {"lockbox.services.writing.audit"}  # Change.audit


def test_only_the_store_talks_to_the_orm() -> None:
    for module in MODULES:
        if module.startswith(("lockbox.store", "lockbox.domain")):
            continue
        for node in ast.walk(_tree(module)):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("tortoise"), module
                if node.module == "lockbox.store.models":
                    # Rows travel up as values; nobody queries them outside the store.
                    continue
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id in {
                    "AccessRequest",
                    "ActivityEvent",
                    "AuditEvent",
                    "Tenant",
                    "Principal",
                    "ApiToken",
                    "SupportTicket",
                }:
                    raise AssertionError(f"{module} queries {owner.id} outside the store")
