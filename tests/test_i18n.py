"""Languages (issue 19): negotiation, the catalogues kept complete and compiled, the CLI in
Chinese. No database: the HTTP side is tests/api/test_language.py, the pages in Chromium
tests/web/test_pages_language.py."""

from __future__ import annotations

import gettext as gnu
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from geo_service import i18n

PACKAGE = Path(i18n.__file__).resolve().parent
LOCALE = PACKAGE / "locale"
# what scripts/update_translations.sh extracts, domain by domain
DOMAINS = {
    "messages": (
        "babel.cfg",
        {
            "_": None,
            "gettext": None,
            "ngettext": (1, 2),
            "N_": None,
            "format_message": None,
            "per_row": None,  # an import's per-row reasons (ingest/rows.py)
        },
    ),
    "pages": ("babel-pages.cfg", {"t": None}),
}
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s|%%")


def _method_map(cfg: Path) -> tuple[list[tuple[str, str]], dict[str, dict[str, str]]]:
    from babel.messages.frontend import parse_mapping_cfg

    with cfg.open() as handle:
        return parse_mapping_cfg(handle)


def _catalogue(domain: str):  # noqa: ANN202
    with (LOCALE / "zh_CN" / "LC_MESSAGES" / f"{domain}.po").open("rb") as handle:
        return read_po(handle, locale="zh_CN")


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_every_marked_string_has_a_chinese_translation(domain: str) -> None:
    cfg, keywords = DOMAINS[domain]
    method_map, options_map = _method_map(LOCALE / cfg)
    extracted = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(
            str(PACKAGE), method_map, options_map, keywords=keywords
        )
    }
    assert len(extracted) > 100  # the extraction itself works
    catalogue = _catalogue(domain)
    missing = sorted(m for m in extracted if not (catalogue.get(m) and catalogue.get(m).string))
    fuzzy = sorted(m.id for m in catalogue if m.id and m.fuzzy)
    assert missing == [], f"untranslated in {domain}.po (run scripts/update_translations.sh)"
    assert fuzzy == [], f"fuzzy in {domain}.po"


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_translations_keep_every_placeholder(domain: str) -> None:
    for message in _catalogue(domain):
        if not message.id:
            continue
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(
            PLACEHOLDER.findall(message.id)
        ), message.id


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_the_catalogues_pass_babels_own_checks(domain: str) -> None:
    """What ``pybabel compile`` reports as errors (it still writes the .mo and exits 0): e.g.
    "95% low" is read as a %-placeholder ("% lo") that a translation cannot keep."""
    errors = [(m.id, [str(e) for e in errs]) for m, errs in _catalogue(domain).check()]
    assert errors == []


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_committed_mo_files_are_compiled_from_the_po_files(domain: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, _catalogue(domain))
    compiled.seek(0)
    fresh = gnu.GNUTranslations(compiled)
    with (LOCALE / "zh_CN" / "LC_MESSAGES" / f"{domain}.mo").open("rb") as handle:
        committed = gnu.GNUTranslations(handle)
    assert committed._catalog == fresh._catalog  # type: ignore[attr-defined]


def test_accept_language_picks_the_most_preferred_served_language() -> None:
    assert i18n.accept_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN"
    assert i18n.accept_language("zh-Hans") == "zh-CN"
    assert i18n.accept_language("en-US,zh-CN;q=0.5") == "en"
    assert i18n.accept_language("fr-FR, zh-CN;q=0.3") == "zh-CN"  # French is not served
    assert i18n.accept_language("zh-TW, en;q=0.1") == "en"  # Traditional is not Simplified
    assert i18n.accept_language("zh-CN;q=0, en;q=0.2") == "en"  # q=0: not acceptable
    assert i18n.accept_language("") is None and i18n.accept_language("*") is None


def test_the_switch_beats_the_header_which_beats_the_deployment_default() -> None:
    assert i18n.negotiate(requested="zh-CN", cookie="en", header="en", default="en") == "zh-CN"
    assert i18n.negotiate(cookie="zh-CN", header="en", default="en") == "zh-CN"
    assert i18n.negotiate(requested="xx", cookie=None, header="en", default="zh_CN") == "en"
    assert i18n.negotiate(header="de", default="zh_CN") == "zh-CN"
    assert i18n.negotiate(header=None, default=None) == "en"


def test_command_language_comes_from_geo_locale_then_posix_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("GEO_LOCALE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    assert i18n.environment_language() == "en"
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert i18n.environment_language() == "zh-CN"
    assert i18n.gettext("Not found") == "未找到"
    monkeypatch.setenv("GEO_LOCALE", "en")
    assert i18n.gettext("Not found") == "Not found"
    token = i18n.use_language("zh-CN")  # a request's language beats the environment
    try:
        assert i18n.format_message("area {id} does not exist", id=7) == "区域 7 不存在"
    finally:
        i18n.reset_language(token)


def test_geo_locale_setting_takes_any_spelling_and_refuses_unserved() -> None:
    from pydantic import ValidationError

    from geo_service.settings import ApiSettings

    assert ApiSettings(locale="zh_CN").locale == "zh-CN"
    assert ApiSettings(locale="zh-Hans").locale == "zh-CN"
    assert ApiSettings().locale == "en"
    with pytest.raises(ValidationError, match="not a served language"):
        ApiSettings(locale="fr")


def test_cli_help_and_errors_in_chinese_with_geo_locale() -> None:
    env = {**os.environ, "GEO_LOCALE": "zh_CN", "COLUMNS": "200"}
    run = subprocess.run(
        [sys.executable, "-m", "geo_service.cli.main", "users", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "用户：一个角色，可选绑定一个区域。" in run.stdout
    assert "创建用户及其第一个 API 密钥" in run.stdout
    env["GEO_LOCALE"] = "en"
    english = subprocess.run(
        [sys.executable, "-m", "geo_service.cli.main", "users", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "Users: a role and, optionally, an area." in english.stdout


def test_every_t_call_of_the_page_scripts_is_in_the_catalogue() -> None:
    # Babel's JavaScript lexer can miss a call nested in a template literal; read the
    # scripts plainly too, so no string of a page stays English by accident
    calls = re.compile(r"""\bt\(\s*"((?:[^"\\]|\\.)*)"|\bt\(\s*'((?:[^'\\]|\\.)*)'""")
    catalogue = _catalogue("pages")
    missing = []
    for script in sorted((PACKAGE / "web" / "static" / "pages").glob("*.js")):
        code = "\n".join(
            line
            for line in script.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("//")
        )
        for double, single in calls.findall(code):
            text = (double or single).replace('\\"', '"').replace("\\'", "'")
            message = catalogue.get(text)
            if not (message and message.string):
                missing.append(f"{script.name}: {text}")
    assert missing == []
