"""Lint tests over the project's own source (issue 15, points 11 and 12), read with ``ast``:

- nothing unpacked into a query (``filter(**x)``, ``order_by(*x)``, …) unless it is built in the
  code itself or is on the reviewed list below, so no request parameter picks fields or sorting;
- ``QuerySet.update()`` and ``bulk_update()`` on a history-tracked model write only fields its
  history does not track (history is written by ``save()``; an update that changes a tracked field
  would leave the model history silently incomplete);
- views change nothing themselves: no save, delete, create or queryset update in a view module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("accessreq", "audit", "portal", "docs", "scim")
QUERY_METHODS = {
    "filter",
    "exclude",
    "get",
    "values",
    "values_list",
    "annotate",
    "aggregate",
    "order_by",
    "update",
    "only",
    "defer",
    "select_related",
    "prefetch_related",
}
# Unpacked arguments reviewed by hand: (file, the unpacked expression) → why it is safe.
REVIEWED_UNPACKING = {
    ("accessreq/reports/base.py", "self.fields"): "a class attribute of each report",
    ("accessreq/evidence/dashboard.py", "_counts('items__')"): "built from constants",
    ("accessreq/evidence/dashboard.py", "_counts()"): "built from constants",
    ("audit/verify.py", "_Row._fields"): "a namedtuple's own field names",
    ("accessreq/reports/dashboard.py", "buckets"): "keys from the AGE_BUCKETS constant",
    ("accessreq/reports/dashboard.py", "tiers"): "keys from the RiskTier choices",
}


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            relative = path.relative_to(ROOT).as_posix()
            yield relative, ast.parse(path.read_text(), filename=relative)


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            yield node


def _built_in_code(node: ast.expr) -> bool:
    """A literal, a module constant (an UPPER_CASE name) or a comprehension over one: what the
    code itself spells out, never a value that arrived with a request."""
    if isinstance(node, ast.Name):
        return node.id.isupper()
    if isinstance(node, ast.DictComp | ast.ListComp):
        return all(_constant_source(g.iter) for g in node.generators)
    if isinstance(node, ast.Dict):
        return all(isinstance(k, ast.Constant | ast.JoinedStr) for k in node.keys)
    if isinstance(node, ast.List | ast.Tuple):
        return all(isinstance(e, ast.Constant) for e in node.elts)
    return False


def _constant_source(node: ast.expr) -> bool:
    """``CONSTANT``, ``CONSTANT.items()``, ``Choices.values``: a module-level constant."""
    while isinstance(node, ast.Call | ast.Attribute):
        node = node.func if isinstance(node, ast.Call) else node.value
    return isinstance(node, ast.Name) and (node.id.isupper() or node.id[:1].isupper())


def test_nothing_from_outside_is_unpacked_into_a_query() -> None:
    found = []
    for relative, tree in _sources():
        for call in _calls(tree):
            if call.func.attr not in QUERY_METHODS:
                continue
            unpacked = [a.value for a in call.args if isinstance(a, ast.Starred)]
            unpacked += [k.value for k in call.keywords if k.arg is None]
            for expr in unpacked:
                if _built_in_code(expr):
                    continue
                source = ast.unparse(expr)
                if (relative, source) not in REVIEWED_UNPACKING:
                    found.append(f"{relative}:{call.lineno} {call.func.attr}(…{source})")
    assert not found, (
        "unpacked into a query; use an allow-list, or review and list it: " + ", ".join(found)
    )


def _root_model(node: ast.expr) -> str | None:
    """``Model`` in ``Model.objects.<chain>.update(...)``."""
    while isinstance(node, ast.Call | ast.Attribute):
        if isinstance(node, ast.Attribute) and node.attr == "objects":
            return node.value.id if isinstance(node.value, ast.Name) else None
        node = node.func if isinstance(node, ast.Call) else node.value
    return None


def _tracked_fields(model: type) -> set[str] | None:
    history = getattr(model, "history", None)
    if history is None:
        return None
    historical = history.model
    return {f.attname for f in historical._meta.concrete_fields} | {
        f.name for f in historical._meta.concrete_fields
    }


@pytest.mark.django_db
def test_updates_that_skip_history_never_write_a_tracked_field() -> None:
    models = {m.__name__: m for m in apps.get_models() if m.__module__.split(".")[0] in PACKAGES}
    found = []
    for relative, tree in _sources():
        for call in _calls(tree):
            if call.func.attr not in ("update", "bulk_update"):
                continue
            name = _root_model(call.func.value)
            if name is None or name not in models:
                continue
            tracked = _tracked_fields(models[name])
            if tracked is None:
                continue
            if call.func.attr == "bulk_update":
                written = {
                    e.value
                    for a in call.args[1:2]
                    if isinstance(a, ast.List | ast.Tuple)
                    for e in a.elts
                    if isinstance(e, ast.Constant)
                }
            else:
                written = {k.arg for k in call.keywords if k.arg}
            if any(k.arg is None for k in call.keywords) or written & tracked:
                fields = sorted(str(field) for field in written & tracked)
                found.append(f"{relative}:{call.lineno} {name}.{fields}")
    assert not found, "these updates change history-tracked fields without history: " + ", ".join(
        found
    )


WRITES = {
    "save",
    "delete",
    "create",
    "bulk_create",
    "bulk_update",
    "get_or_create",
    "update_or_create",
    "create_user",
}
VIEW_MODULES = (
    "accessreq/views/",
    "accessreq/api/views.py",
    "accessreq/api/deployments.py",
    "portal/views.py",
    "portal/mfa_views.py",
    "portal/home.py",
    "audit/views.py",
    "audit/export_views.py",
    "docs/views.py",
    "docs/diagram_views.py",
    "scim/views.py",
    "scim/pages.py",
)


def _is_query(node: ast.expr) -> bool:
    """``X.objects…`` or ``….filter(…)``: a queryset, as opposed to a dict being updated."""
    while isinstance(node, ast.Call | ast.Attribute):
        if isinstance(node, ast.Attribute) and node.attr in ("objects", "filter", "exclude"):
            return True
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


def test_views_change_nothing_themselves() -> None:
    """State changes go through services, which write their audit event in the same
    transaction; a view only parses, calls a service and renders (issue 15, point 12)."""
    found = []
    for relative, tree in _sources():
        if not relative.startswith(VIEW_MODULES):
            continue
        for call in _calls(tree):
            method = call.func.attr
            if method in WRITES or (method == "update" and _is_query(call.func.value)):
                found.append(f"{relative}:{call.lineno} .{method}()")
    assert found == [], "write through a service instead"
