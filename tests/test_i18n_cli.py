"""The CLI speaks the command's language (issue 19): every help text and message of every
command group goes through the catalogue (read from the source, so a new English message
fails here; log lines too: the CLI shows them on the terminal), and commands of each group run
with GEO_LOCALE=zh_CN print no English sentence. RUNS stop before they would need a database;
the commands after them run against a small demo city of their own."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

from geo_service import i18n
from tests.source_scan import TRANSLATORS, WORD, call_name, literal_texts

PACKAGE = Path(i18n.__file__).resolve().parent

CLI = Path(i18n.__file__).resolve().parent / "cli"
# calls whose text reaches the person at the terminal
SHOWN = {"print", "echo", "status", "update", "BadParameter", "confirm", "add_task", "add_row"}
# a logger's lines: the CLI's logging handler prints them on the terminal (the rebuild of the
# rollups during `geo-service demo`, the simulator's start)
LOGGED = {"debug", "info", "warning", "error", "exception", "critical"}
# modules outside cli/ whose log lines a command shows (the migration every command runs
# first, the demo's loader); only their shown lines are read, not their errors
SHOWING_MODULES = ("db/migrate.py", "db/rollups.py", "demo/load.py")
# calls that make a command or group: each must have a help= of its own (the docstring is
# English source, not what Typer shows)
MAKERS = {"command", "callback", "Typer"}
MARKUP = re.compile(r"\[/?[a-z ]*\]")
# literal text that is no sentence: commands, option names, units
NOT_WORDS = {"geo-service boundaries validate", "m"}


def _english(text: str) -> bool:
    bare = MARKUP.sub("", text).strip()
    if bare.startswith("/") or bare.endswith("://"):  # a path or URL
        return False
    return bare not in NOT_WORDS and bool(WORD.search(bare))


def _translated_names(tree: ast.Module) -> set[str]:
    """Module constants assigned from a translator call (``KEY_HELP = _("...")``)."""
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and call_name(node.value.func) in TRANSLATORS
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _problems(path: Path, *, shown_only: bool = False) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    translated = {  # the constants of every module of the CLI (main.py imports some)
        name
        for module in CLI.glob("*.py")
        for name in _translated_names(ast.parse(module.read_text(encoding="utf-8")))
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = call_name(node.func)
        where = f"{path.name}:{node.lineno}"
        if name in SHOWN or (name in LOGGED and isinstance(node.func, ast.Attribute)):
            for arg in [*node.args, *(k.value for k in node.keywords if k.arg != "style")]:
                found += [
                    f"{where}: {t!r}" for t in literal_texts(arg, read_calls=True) if _english(t)
                ]
        if shown_only:
            continue
        for keyword in node.keywords:
            if keyword.arg in ("help", "epilog", "title"):
                value = keyword.value
                ok = (
                    isinstance(value, ast.Call)
                    and (call_name(value.func) in TRANSLATORS or call_name(value.func) == "join")
                ) or (isinstance(value, ast.Name) and value.id in translated)
                if not ok:
                    found.append(f"{where}: {keyword.arg}= not translated")
        if name in MAKERS and isinstance(node.func, ast.Attribute | ast.Name):
            is_typer = name == "Typer"
            is_command = isinstance(node.func, ast.Attribute) and name in ("command", "callback")
            if (is_typer or is_command) and not any(k.arg == "help" for k in node.keywords):
                found.append(f"{where}: {name}() without help=")
        if isinstance(node.func, ast.Name) and node.func.id.endswith("Error"):
            for arg in node.args:  # a domain error the CLI raises itself
                found += [
                    f"{where}: {t!r}" for t in literal_texts(arg, read_calls=True) if _english(t)
                ]
    return found


def test_the_checker_finds_an_english_message_and_a_command_without_help() -> None:
    source = (
        "@app.command('x')\n"
        "def x():\n"
        "    console.print(f'wrote {n} files')\n"
        "    console.print('[red]' + _('error:') + '[/] ' + format_message('ok {a}', a=a))\n"
        "    typer.Option(help='Plain English')\n"
        "    log.warning('simulating %d grids', n)\n"
        "    log.warning(format_message('simulating {n} grids', n=n))\n"
    )
    path = CLI.parent.parent / "tests" / "_cli_sample.py"
    path.write_text(source, encoding="utf-8")
    try:
        found = _problems(path)
    finally:
        path.unlink()
    assert found == [
        "_cli_sample.py:1: command() without help=",
        "_cli_sample.py:3: 'wrote '",
        "_cli_sample.py:3: ' files'",
        "_cli_sample.py:5: help= not translated",
        "_cli_sample.py:6: 'simulating %d grids'",
    ], found


@pytest.mark.parametrize("module", sorted(p.name for p in CLI.glob("*.py")))
def test_every_help_text_and_message_of_the_cli_goes_through_the_catalogue(module: str) -> None:
    assert _problems(CLI / module) == []


@pytest.mark.parametrize("module", SHOWING_MODULES)
def test_the_lines_other_modules_show_at_the_terminal_go_through_the_catalogue(
    module: str,
) -> None:
    assert _problems(PACKAGE / module, shown_only=True) == []


# Commands of each group that answer without a database (help, refused options), and the
# Chinese each must say
RUNS = [
    (["--help"], "网格、事件与城市层级"),
    (["db", "--help"], "管理内置的 PostgreSQL + PostGIS 集群"),
    (["db", "url", "--role", "nobody"], "--role 必须是"),
    (["db", "purge-audit", "--help"], "删除早于此天数的审计记录"),
    (["boundaries", "--help"], "分版本的边界"),
    (["boundaries", "publish", "--help"], "即使校验发现问题也发布"),
    (["boundaries", "publish", "3", "--effective-from", "soon"], "错误："),
    (["analytics", "run", "--help"], "在所选引擎上运行批量计算"),
    (["analytics", "run", "nothing"], "kind 必须是以下之一"),
    (["export", "rooms", "--to", "x"], "kind 必须是以下之一"),
    (["simulate", "--key", ""], "请给出 --key"),
    (["targets", "--set", "x"], "--set 的格式是 PRIORITY=SECONDS"),
    (["targets", "--help"], "显示各优先级的响应时限"),
    (["demo", "generate", "--no-load", "--end-date", "tomorrow"], "--end-date 必须是 YYYY-MM-DD"),
    (["demo", "--help"], "示范城市"),
    (["import", "--help"], "退出码"),
    (["import", "incidents", "x.csv", "--map", "nothing"], "--map 需要 SRC=FIELD 对"),
    (["users", "create", "--help"], "创建用户及其第一个 API 密钥"),
    (["keys", "--help"], "API 密钥"),
    (["reports", "weekly", "--now", "2026-11-30T08:00", "--out", "x"], "需要时区偏移"),
    (["reports", "weekly"], "请给出 --out DIR 或 --post URL"),
    (["categories", "--help"], "事件类别"),
    (["migrate", "--help"], "将数据库迁移到最新结构"),
    (["escalate", "--help"], "把每个超时未处置完成的事件上交一级"),
    (["serve", "--help"], "提供 API 服务"),
]
# what may stay Latin in a Chinese answer: names of things, not sentences
LATIN_OK = re.compile(
    # the words of the copy of Click inside Typer 0.27 that stay English (cli/framework.py
    # translates its "Usage:", --help's help and its refusals)
    r"(?:Install|Show) completion for the current shell[^│\n]*|"
    r"--?[\w-]+|GEO_\w+|[A-Z][A-Z0-9_]{1,}|python -m geo_service\.cli\.main[\w -]*|"
    r"geo-service[\w -]*|https?://\S+|tcp://\S+|[\w.-]+\.(?:csv|pdf|xlsx|json|shp|zip|kml|kmz|"
    r"gpkg|py)|PostgreSQL|PostGIS|GeoParquet|GeoJSON|Shapefile|Excel|Polsby-Popper|Dask|"
    r"LocalCluster|Ctrl-C|Gini|PROJ|WKT|EPSG|pg_dump|UTF-8|GB18030|BOM|ArcGIS|Chicago"
)
SENTENCE = re.compile(r"\b[A-Za-z]{2,}(?:[ ,']+[A-Za-z]{2,}){2,}")


def _english_sentences(text: str) -> list[str]:
    plain = LATIN_OK.sub(" ", re.sub(r"[│╭╮╰╯─]", " ", text))
    # a line of codes (admin | dispatcher | ...) and choices are values, not sentences
    plain = re.sub(r"\b[a-z_-]+(?: ?[|,] ?[a-z_-]+)+\b", " ", plain)
    plain = re.sub(r"<\w+>|\{\w+\}|\[\w+\]|'[^']*'", " ", plain)
    return SENTENCE.findall(plain)


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GEO_LOCALE": "zh_CN",
        "COLUMNS": "200",
        "TERMINAL_WIDTH": "200",
        "GEO_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",  # never reached
    }
    return subprocess.run(
        [sys.executable, "-m", "geo_service.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(("args", "chinese"), RUNS, ids=[" ".join(a) for a, _ in RUNS])
def test_commands_of_every_group_answer_in_chinese(args: list[str], chinese: str) -> None:
    run = _run(args)
    out = run.stdout + run.stderr
    assert chinese in out, out
    assert "选项" in out or "错误" in out, out  # Typer's own panel titles, through gettext
    assert _english_sentences(out) == [], out


def test_the_sentence_finder_finds_english_left_in_chinese() -> None:
    assert _english_sentences("错误：cannot read the city from http://x: boom") != []
    assert _english_sentences("--role 必须是 app, owner, purge, admin 之一") == []


def test_the_usage_line_is_in_the_command_language() -> None:
    # Click's "Usage:" prefix (typer/_click has no gettext: cli/framework.py hands it one)
    chinese = _run(["db", "--help"])
    out = chinese.stdout + chinese.stderr
    assert "用法： geo-service db" in out or "用法： python -m geo_service.cli.main db" in out, out
    assert "Usage:" not in out, out
    refused = _run(["boundaries", "publish"])  # a missing argument: the usage line on stderr
    assert "用法： " in refused.stderr and "Usage:" not in refused.stderr, refused.stderr
    english = subprocess.run(
        [sys.executable, "-m", "geo_service.cli.main", "db", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "GEO_LOCALE": "en", "COLUMNS": "200", "TERMINAL_WIDTH": "200"},
        timeout=120,
    )
    assert "Usage:" in english.stdout and "用法" not in english.stdout, english.stdout


@pytest.mark.parametrize(
    ("args", "chinese", "english"),
    [
        (["boundaries", "publish"], "缺少参数 'version'。", "Missing argument"),
        (["boundaries", "publish", "x"], "的值无效：'x' 不是有效的整数。", "Invalid value"),
        (["db", "--nope"], "没有选项：--nope", "No such option"),
        (["db", "status", "extra"], "收到多余的参数（extra）", "unexpected extra"),
        (["db", "--help"], "显示此帮助并退出。", "Show this message"),
    ],
)
def test_clicks_own_words_are_in_the_command_language(
    args: list[str], chinese: str, english: str
) -> None:
    """The refusals and --help text of Typer's copy of Click (no gettext of its own) read
    back from the catalogue by their forms (cli/framework.py CLICK_FORMS)."""
    run = _run(args)
    out = run.stdout + run.stderr
    assert chinese in out and english not in out, out
    assert _english_sentences(out) == [], out


# --- commands that read the database, in zh-CN -----------------------------------------------

WHEN = "2026-05-01 10:00"  # before the city's last day: no clock is read


@pytest.fixture(scope="module")
def zh_city(database_url: str) -> tuple[str, dict[str, int], object]:
    """A small demo city of this module's own: its owner's URL, what the loader counted, and
    the city."""
    from datetime import date

    from geo_service.db.engine import make_engine
    from geo_service.demo.city import generate_city
    from geo_service.demo.load import load_city
    from tests.conftest import make_database

    url = make_database("geo_test_i18n_cli")
    engine = make_engine(url)
    city = generate_city(
        seed=23, grids=12, incidents=60, households_per_grid=3, end_date=date(2026, 6, 1)
    )
    counts = load_city(engine, city)
    engine.dispose()
    return url, counts, city


def _run_on(url: str, args: list[str], columns: int = 200) -> str:
    env = {
        **os.environ,
        "GEO_LOCALE": "zh_CN",
        "COLUMNS": str(columns),
        "TERMINAL_WIDTH": str(columns),
        "GEO_DATABASE_URL": url,
    }
    run = subprocess.run(
        [sys.executable, "-m", "geo_service.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return run.stdout + run.stderr


def _incidents_csv(city, path: Path, bad: int) -> Path:  # noqa: ANN001
    point = city.areas[city.areas.level == "grid"].geometry.representative_point().iloc[0]
    rows = [f"{point.x},{point.y},sanitation,{WHEN}"]
    rows += [f"{point.x},{point.y},no-such-category,{WHEN}"] * bad
    path.write_text("lon,lat,category,reported_at\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_an_import_refused_by_the_rejected_share_says_so_in_chinese(zh_city, tmp_path) -> None:  # noqa: ANN001
    path = _incidents_csv(zh_city[2], tmp_path / "bad2.csv", bad=2)
    out = _run_on(zh_city[0], ["import", "incidents", str(path), "--max-rejected-share", "0.1"])
    assert "bad2.csv：3 行中有 2 行被拒绝（66.7%），超过上限 --max-rejected-share 0.1" in out, out
    assert "未写入任何数据" in out and "nothing was written" not in out, out
    assert _english_sentences(out) == [], out


def test_the_import_summary_names_the_kind_the_rows_and_the_assumptions_in_chinese(
    zh_city,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    path = _incidents_csv(zh_city[2], tmp_path / "one.csv", bad=0)
    out = _run_on(zh_city[0], ["import", "incidents", str(path)])
    assert "导入 事件：one.csv" in out, out
    assert "已导入（接受的行）" in out and "已接单" not in out, out  # no incident status
    assert "坐标转换" in out and "无（数据已是 WGS 84）" in out, out
    assert "拒绝该行" in out and "reject" not in out, out
    assert "transformation" not in out and "none" not in out, out
    assert _english_sentences(out) == [], out


def test_boundaries_versions_counts_areas_per_level_in_words(zh_city) -> None:  # noqa: ANN001
    counts = zh_city[1]
    out = _run_on(zh_city[0], ["boundaries", "versions"])
    assert "{" not in out and "'grid'" not in out, out
    assert "网格 12" in out and " · " in out, out
    assert "示范城市" in out and "Demo city" not in out, out
    assert "已发布" in out and "published" not in out, out
    assert counts["areas"] > 12


def test_a_proposal_and_the_demo_are_named_in_the_command_language() -> None:
    from geo_service.cli.boundaries import area_counts, version_name

    token = i18n.use_language("zh_CN")
    try:
        assert version_name("proposal for D04-S01-C05") == "D04-S01-C05 的划分方案"
        assert version_name("Demo city") == "示范城市"
        assert version_name("my own plan") == "my own plan"
        assert area_counts({"grid": 1500, "street": 40, "district": 2}) == (
            "区 2 · 街道 40 · 网格 1,500"
        )
    finally:
        i18n.reset_language(token)


def test_escalate_once_names_the_status_in_chinese(zh_city) -> None:  # noqa: ANN001
    out = _run_on(zh_city[0], ["escalate", "--once", "--now", "2027-06-01T08:00+08:00"])
    assert "第 1 级" in out, out
    assert "(reported)" not in out and "(dispatched)" not in out, out
    assert re.search(r"第 1 级  \((已上报|已派遣|已接单|已到场)\)", out), out
    assert _english_sentences(out) == [], out


def test_everything_the_demo_loader_counts_has_chinese_words(zh_city) -> None:  # noqa: ANN001
    from geo_service.cli.demo import LOADED_WORDS

    token = i18n.use_language("zh_CN")
    try:
        for key in [*zh_city[1], "household_visits"]:
            assert key in LOADED_WORDS, key
            word = i18n.gettext(LOADED_WORDS[key])
            assert not WORD.search(word), (key, word)
    finally:
        i18n.reset_language(token)


def test_categories_list_is_readable_in_80_columns(zh_city) -> None:  # noqa: ANN001
    out = _run_on(zh_city[0], ["categories", "list"], columns=80)
    assert "…" not in out, out
    assert max(cell_len(line) for line in out.splitlines()) <= 80, out
    assert "sanitation" in out and "到场时限（秒）" in out, out
    wide = _run_on(zh_city[0], ["categories", "list"], columns=200)
    assert "…" not in wide and "sanitation" in wide, wide
