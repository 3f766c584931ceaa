"""Reading the package's source for text a person sees: the helpers of the catalogue checks
(tests/test_i18n_cli.py for the CLI, tests/test_i18n_details.py for problem details and
import reasons)."""

from __future__ import annotations

import ast
import re

# the calls that put a text through the catalogue (``per_row`` is the import reasons' one)
TRANSLATORS = frozenset({"_", "gettext", "ngettext", "format_message", "N_", "per_row"})
WORD = re.compile(r"[A-Za-z]{2,}")


def call_name(func: ast.expr) -> str:
    """The name a call is made by: ``f`` of ``f(...)`` and of ``x.f(...)``; else ''."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def literal_texts(node: ast.expr, *, read_calls: bool = False) -> list[str]:
    """The literal text an expression shows, read through ``+``, f-strings, ``a if c else b``
    and ``[... for ...]``. A call is opaque unless ``read_calls``: then a translator call's
    keyword values (shown as they are) and the separator of ``sep.join(...)`` count, as the
    CLI check wants; a problem detail's keyword values are names and paths, not sentences."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant)]
    if isinstance(node, ast.BinOp):
        return literal_texts(node.left, read_calls=read_calls) + literal_texts(
            node.right, read_calls=read_calls
        )
    if isinstance(node, ast.IfExp):
        return literal_texts(node.body, read_calls=read_calls) + literal_texts(
            node.orelse, read_calls=read_calls
        )
    if isinstance(node, ast.ListComp):
        return literal_texts(node.elt, read_calls=read_calls)
    if isinstance(node, ast.Call) and read_calls:
        if call_name(node.func) in TRANSLATORS:
            return [t for k in node.keywords for t in literal_texts(k.value, read_calls=True)]
        if call_name(node.func) == "join" and isinstance(node.func, ast.Attribute):
            return literal_texts(node.func.value, read_calls=True)
    return []
