"""Welsh and English: the locale of a request or a command, translated strings, and Babel's formatters.

One module for the web pages, the CLI and any other code that shows text to people (docs/web.md, "Welsh and
English"):

- :func:`negotiate` picks ``cy`` or ``en`` from an ``Accept-Language`` header; :func:`locale_from_env` from
  ``LANGUAGE`` / ``LC_ALL`` / ``LC_MESSAGES`` / ``LANG`` (so ``LANG=cy_GB.UTF-8 coophub status`` answers in
  Welsh).
- :func:`activate` (or the :func:`using` context manager) sets the locale and time zone for the current context
  (a ``contextvars`` variable: each aiohttp request runs in its own task, so requests never see each other's
  language). :func:`gettext` (``_``), :func:`ngettext`, :func:`pgettext` translate in that locale.
- :data:`N_` marks a string for the catalogue without translating it (module-level tables of labels); translate
  it where it is shown.
- ``format_*`` format numbers, money ("£8.00", never "8.00 GBP"), dates and times (in the hub's time zone,
  Europe/London unless config.toml says otherwise) and "40 seconds ago" with Babel's CLDR data.

The catalogues are ``hub/locale/{cy,en}/LC_MESSAGES/coophub.po``. Only the ``.po`` files are kept in git: they
are compiled in memory by Babel on first use (a few milliseconds, once per process), so no build step and no
generated binary that could drift from its source. The English catalogue is empty on purpose: the msgids are
the English text, and an entry there only overrides the wording without touching the code.
"""

from __future__ import annotations

import datetime as dt
import gettext as _gettext
import io
import os
import re
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel import dates as _dates
from babel import numbers as _numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = [
    "DEFAULT_LOCALE",
    "DEFAULT_TIMEZONE",
    "DOMAIN",
    "LANGUAGE_NAMES",
    "LOCALES",
    "LOCALE_DIR",
    "N_",
    "Settings",
    "activate",
    "current",
    "currency_name",
    "format_ago",
    "format_date",
    "format_datetime",
    "format_filesize",
    "format_list",
    "format_money",
    "format_number",
    "gettext",
    "language_name",
    "locale_from_env",
    "negotiate",
    "ngettext",
    "npgettext",
    "pgettext",
    "reset",
    "timezone",
    "translations",
    "using",
]

#: The languages the pages and the CLI speak, the default first.
LOCALES = ("en", "cy")
DEFAULT_LOCALE = "en"
DEFAULT_TIMEZONE = "Europe/London"
DOMAIN = "coophub"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: Each language's name in its own language, for the language switch (it is marked with its own ``lang``).
LANGUAGE_NAMES = {"en": "English", "cy": "Cymraeg"}
#: The CLDR locale each language formats with: British English (day month year, £), Welsh.
_BABEL = {"en": "en_GB", "cy": "cy_GB"}
#: Accept-Language headers are read up to this many characters and entries (RFC 9110 sets no limit; browsers
#: send under 100 characters, so this bounds the work a hostile header can cause).
MAX_HEADER_CHARS = 1000
MAX_HEADER_ENTRIES = 32
_RANGE = re.compile(r"^([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)(?:;\s*q=([0-9](?:\.[0-9]{0,3})?))?$")


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark ``message`` for the catalogue; translate it later with :func:`gettext`."""
    return message


@dataclass(frozen=True)
class Settings:
    """The locale (``cy`` or ``en``) and time zone that text is produced in."""

    locale: str = DEFAULT_LOCALE
    tz: dt.tzinfo = dt.UTC  # replaced by Europe/London in _DEFAULT below

    @property
    def babel(self) -> str:
        return _BABEL.get(self.locale, _BABEL[DEFAULT_LOCALE])


def timezone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name`` (``Europe/London``).

    Raises:
        ValueError: not a time zone name this machine knows; the message says what to write instead.
    """
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name!r} is not a time zone name; use an IANA name such as Europe/London") from None


_DEFAULT = Settings(DEFAULT_LOCALE, timezone(DEFAULT_TIMEZONE))
_current: ContextVar[Settings] = ContextVar("coophub_i18n", default=_DEFAULT)


def current() -> Settings:
    return _current.get()


def activate(locale: str, tz: dt.tzinfo | str | None = None) -> Token[Settings]:
    """Use ``locale`` (and ``tz``, else the current time zone) in this context from now on.

    Raises:
        ValueError: ``tz`` is a string that names no time zone.
    """
    zone = timezone(tz) if isinstance(tz, str) else tz or current().tz
    return _current.set(Settings(locale if locale in LOCALES else DEFAULT_LOCALE, zone))


def reset(token: Token[Settings]) -> None:
    _current.reset(token)


@contextmanager
def using(locale: str, tz: dt.tzinfo | str | None = None) -> Iterator[Settings]:
    """``with using("cy"): ...`` — the locale (and time zone) for the block.

    Raises:
        ValueError: ``tz`` is a string that names no time zone.
    """
    token = activate(locale, tz)
    try:
        yield current()
    finally:
        _current.reset(token)


# -- choosing the language ---------------------------------------------------------------------------------


def _primary(tag: str) -> str:
    return tag.replace("_", "-").split("-")[0].lower()


def negotiate(header: str | None, supported: tuple[str, ...] = LOCALES) -> str | None:
    """The supported language the ``Accept-Language`` header prefers most, or None if it names none of them.

    ``cy-GB`` and ``cy`` both mean Welsh; ``*`` means any (the first supported). Ties keep the header's order.
    Malformed entries are skipped, as browsers and proxies send all sorts.
    """
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header[:MAX_HEADER_CHARS].split(",")[:MAX_HEADER_ENTRIES]):
        match = _RANGE.match(item.strip())
        if match is None:
            continue
        q = float(match.group(2)) if match.group(2) is not None else 1.0
        if q <= 0 or q > 1:
            continue
        tag = match.group(1)
        language = supported[0] if tag == "*" else _primary(tag)
        if language in supported:
            ranked.append((-q, position, language))
    return min(ranked)[2] if ranked else None


def locale_from_env(environ: dict[str, str] | None = None) -> str:
    """The CLI's language from the POSIX locale variables: ``cy`` when the first of ``LANGUAGE`` (a colon list),
    ``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` that is set asks for Welsh, else ``en``.

    ``C`` and ``POSIX`` mean English, as they do for gettext.
    """
    env = os.environ if environ is None else environ
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if not value:
            continue
        for part in value.split(":") if name == "LANGUAGE" else [value]:
            language = _primary(part.split(".")[0].split("@")[0])
            if language in LOCALES:
                return language
            if language in ("c", "posix"):
                return DEFAULT_LOCALE
        if name != "LANGUAGE":  # the first set variable of the rest decides, as in glibc
            return DEFAULT_LOCALE
    return DEFAULT_LOCALE


# -- translating -------------------------------------------------------------------------------------------


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> _gettext.NullTranslations:
    """The compiled catalogue of ``locale`` (``NullTranslations`` for English or a missing catalogue).

    Raises:
        babel.messages.pofile.PoFileError: the ``.po`` file is malformed (a test reads every catalogue).
    """
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if locale == DEFAULT_LOCALE or not path.exists():
        return _gettext.NullTranslations()
    with path.open("rb") as f:
        catalog = read_po(f, locale=locale, domain=DOMAIN, abort_invalid=True)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)  # fuzzy entries are drafts: show the English until reviewed
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def _t() -> _gettext.NullTranslations:
    return translations(current().locale)


def gettext(message: str) -> str:
    """``message`` in the current locale (itself when not translated)."""
    return _t().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message for the number ``n`` (Welsh has six: zero, one, two, few, many, other)."""
    return _t().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` translated in ``context``, for short strings that mean different things in different places."""
    return _t().pgettext(context, message)


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return _t().npgettext(context, singular, plural, n)


# -- formatting --------------------------------------------------------------------------------------------

#: The last instant Python's datetime can show (body times go up to 2**53 ms, far past year 9999).
_MAX_MS = 253_402_300_799_999


def format_number(n: int | float | Decimal) -> str:
    """``1,234`` in English, ``1,234`` in Welsh (CLDR's grouping for the current locale)."""
    return _numbers.format_decimal(n, locale=current().babel)


def format_money(minor: int, currency: str) -> str:
    """An amount in the currency's minor unit (pence, cents: records hold no floats) as ``£8.00``.

    The number of minor digits is the currency's (ISO 4217: 2 for GBP and EUR, 0 for JPY). An unknown code is
    shown after the number (``8.00 XYZ``) rather than refused: the record is already stored.
    """
    digits = _numbers.get_currency_precision(currency)
    amount = Decimal(minor).scaleb(-digits)
    try:
        return _numbers.format_currency(amount, currency, locale=current().babel)
    except (ValueError, _numbers.UnknownCurrencyFormatError):  # pragma: no cover (CLDR formats any code)
        return f"{format_number(amount)} {currency}"


def currency_name(code: str) -> str:
    """``Pound Sterling`` / ``Punt Prydain`` for ``GBP``; the code itself when CLDR does not know it."""
    try:
        return str(_numbers.get_currency_name(code, locale=current().babel))
    except (ValueError, LookupError):  # pragma: no cover
        return code


def language_name(tag: str) -> str:
    """A BCP 47 tag's language named in the current locale: ``cy`` → ``Welsh`` (or ``Cymraeg`` in Welsh)."""
    try:
        name = Locale.parse(tag.replace("-", "_")).get_display_name(current().babel)
    except (ValueError, UnknownLocaleError, TypeError):
        return tag
    return name or tag


def _moment(ms: int) -> dt.datetime | None:
    if not 0 <= ms <= _MAX_MS:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).astimezone(current().tz)


def _far(ms: int) -> str:
    return gettext("%(ms)s ms after 1970 UTC") % {"ms": format_number(ms)}


def format_date(ms: int) -> str:
    """``5 March 2026`` / ``5 Mawrth 2026``, in the current time zone."""
    moment = _moment(ms)
    if moment is None:
        return _far(ms)
    return _dates.format_date(moment, "long", locale=current().babel)


def format_datetime(ms: int) -> str:
    """``5 March 2026, 14:00 GMT``: the date, 24-hour time, and the zone's abbreviation (GMT or BST in London)."""
    moment = _moment(ms)
    if moment is None:
        return _far(ms)
    date = _dates.format_date(moment, "long", locale=current().babel)
    clock = _dates.format_time(moment, "HH:mm", locale=current().babel)
    return gettext("%(date)s, %(time)s %(zone)s") % {"date": date, "time": clock, "zone": moment.tzname() or ""}


def format_ago(ms: int, now_ms: int) -> str:
    """``40 seconds ago`` / ``40 eiliad yn ôl``; a time ahead of ``now_ms`` reads as "just now"."""
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds == 0:
        return gettext("just now")
    return str(_dates.format_timedelta(dt.timedelta(seconds=-seconds), add_direction=True,
                                       threshold=1.0, locale=current().babel))


def format_filesize(n: int) -> str:
    """``512 bytes``, ``1.5 KB``, ``2.0 MB`` (1 KB = 1024 bytes)."""
    if n < 1024:
        return ngettext("%(n)s byte", "%(n)s bytes", n) % {"n": format_number(n)}
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{_numbers.format_decimal(size, '#,##0.0', locale=current().babel)} {unit}"



#: CLDR's Welsh list pattern writes "a(c)": "ac" before a vowel, "a" otherwise. (The aspirate mutation that
#: "a" causes — "a Chaerdydd" — is not applied: the items are names as their records spell them.)
_A_AC = re.compile(r"\ba\(c\) (?=(\w))")
_VOWELS = set("aeiouwyâêîôûŵŷáéíóúàèìòùäëïöü")


def format_list(items: list[str]) -> str:
    """``a, b and c`` / ``a, b a c`` (CLDR's list pattern for the current locale)."""
    from babel.lists import format_list as _format_list

    if not items:
        return ""
    text = str(_format_list([str(i) for i in items], locale=current().babel))
    return _A_AC.sub(lambda m: "ac " if m.group(1).lower() in _VOWELS else "a ", text)
