"""Every problem detail and import reject reason is in the catalogue (issue 19): read from the
source, each detail a domain error is raised with and each reason a row is rejected with goes
through the translation functions, so a new English-only message fails here. No database:
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
    return found


def _english(node: ast.expr) -> list[str]:
    return [t for t in literal_texts(node) if WORD.search(t)]


def _problems(path: Path, errors: set[str], builders: frozenset[str] = frozenset()) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        shown = path.relative_to(PACKAGE) if path.is_relative_to(PACKAGE) else path.name
        where = f"{shown}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call) and call_name(node.func) in errors and node.args:
            found += [f"{where}: detail {t!r}" for t in _english(node.args[0])]
        if isinstance(node, ast.Call) and call_name(node.func) in builders:
            for arg in node.args:
                found += [f"{where}: detail {t!r}" for t in _english(arg)]
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
        "raise _refuse(name, gettext('a damaged zip file'))\n",
        encoding="utf-8",
    )
    found = _problems(sample, _domain_errors(), frozenset({"_refuse"}))
    assert sorted(found) == [
        "_i18n_sample.py:1: detail ' does not exist'",
        "_i18n_sample.py:1: detail 'incident '",
        "_i18n_sample.py:3: reason 'missing code'",
        "_i18n_sample.py:5: reason 'missing '",
        "_i18n_sample.py:6: detail 'a damaged zip file'",
    ], found
    assert "_refuse" in _error_builders(_domain_errors())


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
