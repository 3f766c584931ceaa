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
What stays English: the rest of that copy's words (``--help``'s "Show this message and exit.",
"Invalid value: …", "No such option") and the help of ``--install-completion`` /
``--show-completion``, written there as plain text without gettext.
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
)


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
