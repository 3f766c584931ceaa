"""Every problem detail and import reject reason is in the catalogue (issue 19): read from the
source, each detail a domain error is raised with and each reason a row is rejected with goes
through the translation functions, so a new English-only message fails here. A detail handed
over in a variable or by a helper's return, a batch endpoint's per-item error, the text a
Scope check words into its refusal and a problem title count too. No database:
the Chinese answers themselves are tests/ingest/test_imports_language.py and
tests/api/test_language.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from geo_service import i18n
from tests.source_scan import WORD, call_name, literal_texts

PACKAGE = Path(i18n.__file__).resolve().parent
# the variables a validation step keeps its per-row reasons in (ingest/rows.py, parsing.py)
REASON_VARIABLES = {"reason", "why", "reasons"}
# Scope's checks whose text argument is worded into their refusal ("{what} lies outside ...")
DETAIL_PARTS = {"require_grid", "require_unrestricted", "require_visible_grid"}
# the keys of a batch endpoint's per-item errors ({"index": 3, "error": "..."})
ITEM_ERROR_KEYS = {"error", "reason", "message"}


def _domain_errors() -> set[str]:
    """GeoServiceError and every class that derives from it, anywhere in the package."""
    bases: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(call_name(b) for b in node.bases)
    found = {"GeoServiceError"}
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


def _error_builders(errors: set[str]) -> set[str]:
    """The package's functions that build a domain error from their arguments (annotated to
    return one, as ``ingest.uploads._refuse``): what they are called with is a detail too."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.FunctionDef)
                and node.returns is not None
                and call_name(node.returns) in errors
            ):
                found.add(node.name)
            if isinstance(node, ast.FunctionDef) and _raises_a_parameter(node, errors):
                found.add(node.name)
    return found


def _raises_a_parameter(func: ast.FunctionDef, errors: set[str]) -> bool:
    """Whether ``func`` raises a domain error with one of its parameters as the detail (as
    ``readers.check_earth_crs(crs, message)``): what it is called with is a detail too."""
    params = {a.arg for a in func.args.args + func.args.kwonlyargs}
    return any(
        isinstance(node, ast.Call)
        and call_name(node.func) in errors
        and node.args
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id in params
        for node in ast.walk(func)
    )


def _english(node: ast.expr) -> list[str]:
    return [t for t in literal_texts(node) if WORD.search(t)]


def call_name_of_bases(node: ast.ClassDef) -> set[str]:
    """The names of a class's bases."""
    return {call_name(b) for b in node.bases}


def _english_sources(tree: ast.Module) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The module's names bound to English text (``missing = f"... does not exist"``) and its
    functions that return English text (``def _missing(): return f"..."``): a detail handed
    over through either is as English as a literal one, and literal_texts sees neither."""
    names: dict[str, list[str]] = {}
    returns: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            texts = _english(node.value)
            for target in node.targets:
                if texts and isinstance(target, ast.Name):
                    names.setdefault(target.id, []).extend(texts)
        if isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and inner.value is not None:
                    texts = _english(inner.value)
                    if texts:
                        returns.setdefault(node.name, []).extend(texts)
    return names, returns


def _detail_texts(
    node: ast.expr, names: dict[str, list[str]], returns: dict[str, list[str]]
) -> list[str]:
    """The English text an argument carries: literal, through a name, or a helper's return."""
    if isinstance(node, ast.Name):
        return names.get(node.id, [])
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return returns.get(node.func.id, [])
    return _english(node)


def _problems(path: Path, errors: set[str], builders: frozenset[str] = frozenset()) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names, returns = _english_sources(tree)
    for node in ast.walk(tree):
        shown = path.relative_to(PACKAGE) if path.is_relative_to(PACKAGE) else path.name
        where = f"{shown}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call) and call_name(node.func) in errors and node.args:
            found += [f"{where}: detail {t!r}" for t in _detail_texts(node.args[0], names, returns)]
        if isinstance(node, ast.Call) and call_name(node.func) in builders | DETAIL_PARTS:
            for arg in node.args:
                found += [f"{where}: detail {t!r}" for t in _detail_texts(arg, names, returns)]
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value in ITEM_ERROR_KEYS:
                    found += [f"{where}: item error {t!r}" for t in _english(value)]
        if isinstance(node, ast.ClassDef) and call_name_of_bases(node) & errors:
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "title" for t in stmt.targets)
                    and isinstance(stmt.value, ast.Constant)
                ):
                    found += [f"{where}: title {stmt.value.value!r}"]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add"
            and call_name(node.func.value) in REASON_VARIABLES
            and len(node.args) == 2
        ):
            found += [f"{where}: reason {t!r}" for t in _english(node.args[1])]
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Subscript) and call_name(t.value) in REASON_VARIABLES
            for t in node.targets
        ):
            found += [f"{where}: reason {t!r}" for t in _english(node.value)]
    return found


def test_the_checker_finds_english_details_and_reasons(tmp_path: Path) -> None:
    sample = tmp_path / "_i18n_sample.py"
    sample.write_text(
        "raise NotFoundError(f'incident {x} does not exist')\n"
        "raise NotFoundError(format_message('incident {x} does not exist', x=x))\n"
        "reasons.add(mask, 'missing code')\n"
        "reasons.add(mask, per_row('unknown status {s!r}', index, s=s))\n"
        "reason[blank] = f'missing {name}'\n"
        "raise _refuse(name, 'a damaged zip file')\n"
        "raise _refuse(name, gettext('a damaged zip file'))\n"
        "missing = f'responder {r} does not exist'\n"
        "raise NotFoundError(missing)\n"
        "def _missing(x):\n"
        "    return f'incident {x} gone'\n"
        "raise NotFoundError(_missing(x))\n"
        "errors.append({'index': i, 'error': f'no responder {r}'})\n"
        "errors.append({'index': i, 'error': gettext('at lies in the future')})\n"
        "scope.require_grid(grid, 'this incident')\n"
        "scope.require_grid(grid, gettext('this incident'))\n"
        "class _Refused(InvalidInputError):\n"
        "    title = 'Refused'\n"
        "class _Fine(InvalidInputError):\n"
        "    title = N_('Fine')\n"
        "def _check(ok, message):\n"
        "    if not ok:\n"
        "        raise InvalidInputError(message)\n"
        "_check(ok, f'the CRS {crs} is not an Earth CRS')\n",
        encoding="utf-8",
    )
    builders = frozenset({"_refuse", "_check"})
    found = _problems(sample, _domain_errors(), builders)
    assert sorted(found) == [
        "_i18n_sample.py:12: detail ' gone'",
        "_i18n_sample.py:12: detail 'incident '",
        "_i18n_sample.py:13: item error 'no responder '",
        "_i18n_sample.py:15: detail 'this incident'",
        "_i18n_sample.py:17: title 'Refused'",
        "_i18n_sample.py:1: detail ' does not exist'",
        "_i18n_sample.py:1: detail 'incident '",
        "_i18n_sample.py:24: detail ' is not an Earth CRS'",
        "_i18n_sample.py:24: detail 'the CRS '",
        "_i18n_sample.py:3: reason 'missing code'",
        "_i18n_sample.py:5: reason 'missing '",
        "_i18n_sample.py:6: detail 'a damaged zip file'",
        "_i18n_sample.py:9: detail ' does not exist'",
        "_i18n_sample.py:9: detail 'responder '",
    ], found
    assert {"_refuse", "check_earth_crs", "require_visible_grid"} <= _error_builders(
        _domain_errors()
    )


MODULES = sorted(
    str(p.relative_to(PACKAGE))
    for p in PACKAGE.rglob("*.py")
    if "migrations" not in p.parts and p.parent.name != "cli"  # the CLI: test_i18n_cli.py
)


@pytest.mark.parametrize("module", MODULES)
def test_every_detail_and_reject_reason_goes_through_the_catalogue(module: str) -> None:
    assert _problems(PACKAGE / module, _DOMAIN_ERRORS, _BUILDERS) == []


_DOMAIN_ERRORS = _domain_errors()
_BUILDERS = frozenset(_error_builders(_DOMAIN_ERRORS))
