"""The words Typer prints around ours (its help panels, their titles and marks, some of its
refusals), in the command's language.

Typer marks these with the standard library's ``gettext.gettext`` (domain ``messages``,
language from ``LANGUAGE`` / ``LC_ALL`` / ``LC_MESSAGES`` / ``LANG``) and ships no Chinese
catalogue. ``speak_command_language`` points that domain at our catalogue
(``geo_service/locale``) and sets ``LANGUAGE`` to the command's language (``GEO_LOCALE``
first, as ``i18n.environment_language``), so ``Options``, ``Commands``, ``[required]`` and
``Try '… --help' for help.`` come in the same language as our own messages. The strings are
marked below, as Typer 0.27 writes them (``typer/rich_utils.py``, ``typer/core.py``), so that
``scripts/update_translations.sh`` keeps them in the catalogue.

The copy of Click that Typer 0.27 carries (``typer/_click``) has no gettext: its ``Usage:``
prefix is translated here by giving ``HelpFormatter.write_usage`` the prefix it takes (Click's
own hook for it), and Typer's highlighter is told the translated prefix so it is styled alike.
Its refusals ("Missing argument 'X'.", "Invalid value for '--n': 'x' is not a valid integer.",
"No such option: --x", extra arguments) are read back by their forms (``CLICK_FORMS``) and
written again from the catalogue, and ``--help``'s own help ("Show this message and exit.") is
set from it. What stays English: the help of ``--install-completion`` /
``--show-completion`` and rarer refusals of that copy, written as plain text without gettext.
"""

from __future__ import annotations

import gettext as gnu
import os
import re
from typing import Any

from geo_service.i18n import CHINESE, LOCALE_DIR, N_, environment_language

FRAMEWORK_WORDS = (
    N_("(deprecated) "),
    N_("(dynamic)"),
    N_("Aborted!"),
    N_("Aborted."),
    N_("Arguments"),
    N_("Commands"),
    N_("Error"),
    N_("Missing command."),
    N_("No such command {name!r}."),
    N_("Options"),
    N_("Try [blue]'{command_path} {help_option}'[/] for help."),
    N_("[default: {}]"),
    N_("[env var: {}]"),
    N_("[required]"),
    N_("default: {default}"),
    N_("env var: {var}"),
    N_("required"),
    N_("Usage:"),
    N_("Show this message and exit."),
)

# The refusals of Typer's copy of Click, by the forms it writes them in (typer/_click/
# exceptions.py and types.py, Typer 0.27), each with the catalogue message that says the same
# with the same named parts. Matched anywhere in the message, in this order; a message of
# another form is left as it is. (Hand-made because that copy of Click has no gettext at all.)
CLICK_FORMS = (
    (r"^Missing argument(?P<hint>[^.]*)\.", N_("Missing argument{hint}.")),
    (r"^Missing option(?P<hint>[^.]*)\.", N_("Missing option{hint}.")),
    (r"^Missing parameter(?P<hint>[^.]*)\.", N_("Missing parameter{hint}.")),
    (r"^Invalid value for (?P<hint>.+?): ", N_("Invalid value for {hint}: ")),
    (r"^Invalid value: ", N_("Invalid value: ")),
    (r"^No such option: (?P<name>\S+)", N_("No such option: {name}")),
    (r"\(Possible options: (?P<options>[^)]*)\)", N_("(Possible options: {options})")),
    (
        r"Got unexpected extra argument(?:s|\(s\))? \((?P<args>.*)\)",
        N_("Got unexpected extra argument(s) ({args})"),
    ),
    (
        r"(?P<value>'[^']*'|\S+) is not a valid int(?:eger)?\.",
        N_("{value} is not a valid integer."),
    ),
    (r"(?P<value>'[^']*'|\S+) is not a valid float\.", N_("{value} is not a valid number.")),
    (r"(?P<value>'[^']*'|\S+) is not a valid boolean\.", N_("{value} is not a valid boolean.")),
    (r"(?P<value>'[^']*'|\S+) is not a valid UUID\.", N_("{value} is not a valid UUID.")),
    (
        r"(?P<value>\S+) is not in the range (?P<range>\S+)\.",
        N_("{value} is not in the range {range}."),
    ),
    (r"Recognized values: (?P<values>.*)$", N_("Recognized values: {values}")),
    (r"(?P<option>\S+) option requires an argument\.", N_("{option} option requires an argument.")),
)


def click_words(message: str) -> str:
    """``message`` from Typer's copy of Click in the command's language (``CLICK_FORMS``).

    >>> click_words("Missing argument 'FILE'.")
    "Missing argument 'FILE'."
    """
    for form, said in CLICK_FORMS:

        def again(found: re.Match[str], said: str = said) -> str:
            return gnu.gettext(said).format(**found.groupdict())

        message = re.sub(form, again, message, count=1)
    return message


def speak_command_language() -> str:
    """Make Typer's own words speak the command's language; return it.

    Call before Typer renders anything (``cli/main.py`` does at import). Sets ``LANGUAGE``
    (a GNU gettext variable: programs started from the command read it only in a non-C
    locale) and binds the standard library's ``messages`` domain to our catalogues.
    """
    language = environment_language()
    os.environ["LANGUAGE"] = "zh_CN" if language == CHINESE else "en"
    gnu.bindtextdomain("messages", str(LOCALE_DIR))
    _translate_usage_prefix()
    _translate_click_refusals()
    return language


def _translate_usage_prefix() -> None:
    """Give Click's usage line (``HelpFormatter.write_usage``) the translated ``Usage:`` when
    no caller names a prefix, and highlight that prefix as Typer highlights the English one.
    Does nothing when Typer's copy of Click no longer has the hook (the line stays English)."""
    try:
        from typer import rich_utils
        from typer._click.formatting import HelpFormatter
    except ImportError:  # pragma: no cover - a Typer without its copy of Click
        return
    original = HelpFormatter.write_usage
    if getattr(original, "_geo_translated", False):
        return

    def write_usage(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        if prefix is None:
            prefix = f"{gnu.gettext('Usage:')} "
        original(self, prog, args, prefix)

    write_usage._geo_translated = True  # type: ignore[attr-defined]
    HelpFormatter.write_usage = write_usage  # type: ignore[method-assign]
    word = gnu.gettext("Usage:")
    if word != "Usage:":
        marker = rich_utils.OptionHighlighter
        marker.highlights = [*marker.highlights, rf"(?P<usage>{re.escape(word)} )"]


def _translate_click_refusals() -> None:
    """Say the refusals of Typer's copy of Click (its exceptions' ``format_message``) and the
    help of ``--help`` in the command's language. Does nothing without that copy."""
    try:
        from typer._click import core, exceptions
    except ImportError:  # pragma: no cover - a Typer without its copy of Click
        return
    for cls in (
        exceptions.ClickException,
        exceptions.BadParameter,
        exceptions.MissingParameter,
        exceptions.NoSuchOption,
    ):
        # ClickException inherits its own from Typer's base: wrap what it has
        original = cls.__dict__.get("format_message") or (
            cls.format_message if cls is exceptions.ClickException else None
        )
        if original is None or getattr(original, "_geo_translated", False):
            continue

        def format_message(self: Any, original: Any = original) -> str:
            return click_words(original(self))

        format_message._geo_translated = True  # type: ignore[attr-defined]
        cls.format_message = format_message  # type: ignore[method-assign]
    help_option = core.Command.get_help_option
    if getattr(help_option, "_geo_translated", False):
        return

    def get_help_option(self: Any, ctx: Any) -> Any:
        option = help_option(self, ctx)
        if option is not None and option.help == "Show this message and exit.":
            option.help = gnu.gettext("Show this message and exit.")
        return option

    get_help_option._geo_translated = True  # type: ignore[attr-defined]
    core.Command.get_help_option = get_help_option  # type: ignore[method-assign]
