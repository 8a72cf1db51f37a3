"""hub.i18n: choosing the language, the catalogues, and Babel's formats (docs/web.md, "Welsh and English").

The catalogue tests extract every string from the code and templates (as ``make messages`` does) and check
that each is in both catalogues, that every Welsh entry is translated with the same placeholders, and that
plural entries have Welsh's six forms. They fail when someone adds a string and forgets the catalogues.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from hub import i18n

ROOT = Path(__file__).resolve().parents[2]
#: The same sources and keywords as babel.cfg and the Makefile's `messages` target.
METHODS = [("hub/**.py", "python"), ("cli/**.py", "python"), ("hub/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2),
            "npgettext": ((1, "c"), 2, 3), "N_": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extracted() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT, method_map=METHODS, keywords=KEYWORDS, comment_tags=()
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return {m for m in found if m}


def catalogue(locale: str):
    with open(i18n.LOCALE_DIR / locale / "LC_MESSAGES" / "coophub.po", "rb") as f:
        return read_po(f, locale=locale)


@pytest.fixture(scope="module")
def sources() -> set[str]:
    return extracted()


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_string_in_the_code_is_in_the_catalogue(sources: set[str], locale: str) -> None:
    ids = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalogue(locale) if m.id}
    assert len(sources) > 250  # the extraction found the templates and the Python code
    missing = sorted(sources - ids)
    assert not missing, f"run `make messages` and translate: {missing[:10]}"
    assert not sorted(ids - sources), "obsolete entries: run `make messages`"


def test_every_welsh_entry_is_translated_with_the_same_placeholders() -> None:
    cat = catalogue("cy")
    assert cat.num_plurals == 6  # zero, one, two, few, many, other
    for m in cat:
        if not m.id:
            continue
        assert not m.fuzzy, m.id
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        forms = m.string if isinstance(m.string, tuple) else (m.string,)
        if isinstance(m.id, tuple):
            assert len(forms) == 6, m.id
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for form in forms:
            assert form, f"untranslated: {m.id!r}"
            # %(num)s may be left out of the form for one (as English does), never an unknown name.
            assert set(PLACEHOLDER.findall(form)) <= wanted | {"num"}, (m.id, form)
            assert set(PLACEHOLDER.findall(form)) >= wanted - {"num"}, (m.id, form)


def test_the_catalogue_header_asks_for_review_by_a_welsh_speaker() -> None:
    text = (i18n.LOCALE_DIR / "cy" / "LC_MESSAGES" / "coophub.po").read_text(encoding="utf-8")
    assert "NEEDS REVIEW BY A WELSH SPEAKER" in text.split("msgid", 1)[0]


def test_translations_and_plurals() -> None:
    with i18n.using("cy"):
        assert i18n.gettext("Directory") == "Cyfeiriadur"
        forms = [i18n.ngettext("%(num)s result", "%(num)s results", n) % {"num": n} for n in (1, 2, 3, 6, 7)]
        assert forms == ["1 canlyniad", "2 ganlyniad", "3 chanlyniad", "6 chanlyniad", "7 canlyniad"]
        assert i18n.gettext("no such msgid, so itself") == "no such msgid, so itself"
    with i18n.using("en"):
        assert i18n.gettext("Directory") == "Directory"
        assert i18n.ngettext("%(num)s result", "%(num)s results", 2) == "%(num)s results"
    assert i18n.current().locale == "en"  # `using` restores what was there


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("cy", "cy"),
        ("cy-GB,cy;q=0.9,en-GB;q=0.8,en;q=0.7", "cy"),
        ("en-GB,en;q=0.9,cy;q=0.8", "en"),
        ("fr-FR,fr;q=0.9,cy;q=0.5", "cy"),
        ("en;q=0.5, cy;q=0.6", "cy"),
        ("cy;q=0, en", "en"),
        ("*", "en"),
        ("fr, de", None),
        ("", None),
        (None, None),
        ("cy;q=2, en;q=abc, ;;;, en-", None),  # malformed entries are skipped
        ("x" * 5000 + ",cy", None),  # beyond the bounded prefix
    ],
)
def test_negotiate(header: str | None, expected: str | None) -> None:
    assert i18n.negotiate(header) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LANG": "cy_GB.UTF-8"}, "cy"),
        ({"LANG": "en_GB.UTF-8"}, "en"),
        ({"LC_ALL": "cy_GB.UTF-8", "LANG": "en_GB.UTF-8"}, "cy"),
        ({"LC_ALL": "C", "LANG": "cy_GB.UTF-8"}, "en"),
        ({"LANGUAGE": "cy:en", "LANG": "en_US.UTF-8"}, "cy"),
        ({"LANGUAGE": "fr:cy", "LANG": "en_US.UTF-8"}, "cy"),
        ({"LC_MESSAGES": "cy_GB@euro"}, "cy"),
        ({}, "en"),
    ],
)
def test_locale_from_env(env: dict[str, str], expected: str) -> None:
    assert i18n.locale_from_env(env) == expected


def test_money_by_babel() -> None:
    with i18n.using("en"):
        assert i18n.format_money(800, "GBP") == "£8.00"
        assert i18n.format_money(123456, "EUR") == "€1,234.56"
        assert i18n.format_money(1500, "JPY") == "JP¥1,500"  # no minor unit: 1500 yen
    with i18n.using("cy"):
        assert i18n.format_money(800, "GBP") == "£8.00"
        assert i18n.currency_name("GBP") == "Punt Prydain"


def test_times_in_the_hubs_time_zone() -> None:
    winter = int(dt.datetime(2026, 1, 5, 14, 0, tzinfo=dt.UTC).timestamp() * 1000)
    summer = int(dt.datetime(2026, 7, 5, 14, 0, tzinfo=dt.UTC).timestamp() * 1000)
    with i18n.using("en"):
        assert i18n.format_datetime(winter) == "5 January 2026, 14:00 GMT"
        assert i18n.format_datetime(summer) == "5 July 2026, 15:00 BST"  # Europe/London by default
        assert i18n.format_date(summer) == "5 July 2026"
    with i18n.using("cy"):
        assert i18n.format_datetime(summer) == "5 Gorffennaf 2026, 15:00 BST"
        assert i18n.format_ago(summer - 40_000, summer) == "40 eiliad yn ôl"
    with i18n.using("en", "America/New_York"):
        assert i18n.format_datetime(summer) == "5 July 2026, 10:00 EDT"
    with i18n.using("en"):
        assert i18n.format_ago(summer - 3 * 3600_000, summer) == "3 hours ago"
        assert i18n.format_ago(summer + 5000, summer) == "just now"
        assert i18n.format_datetime(2**53) == "9,007,199,254,740,992 ms after 1970 UTC"  # past year 9999


def test_numbers_sizes_and_lists() -> None:
    with i18n.using("en"):
        assert i18n.format_number(1234567) == "1,234,567"
        assert i18n.format_filesize(1) == "1 byte"
        assert i18n.format_filesize(1536) == "1.5 KB"
        assert i18n.format_list(["Gwynedd", "Powys", "Cardiff"]) == "Gwynedd, Powys and Cardiff"
        assert i18n.language_name("cy") == "Welsh"
    with i18n.using("cy"):
        assert i18n.format_list(["Gwynedd", "Powys"]) == "Gwynedd a Powys"
        assert i18n.language_name("en") == "Saesneg"
        assert i18n.format_filesize(2) == "2 feit"


def test_a_bad_time_zone_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="is not a time zone name; use an IANA name such as Europe/London"):
        i18n.timezone("Europe/Lndon")


def test_config_toml_timezone_is_checked(tmp_path: Path) -> None:
    from hub.home import HomeError, HubConfig

    assert HubConfig.from_toml('name = "x"\n').timezone == "Europe/London"
    assert HubConfig.from_toml('name = "x"\ntimezone = "Europe/Dublin"\n').timezone == "Europe/Dublin"
    assert 'timezone = "Europe/London"' in HubConfig(name="x").to_toml()
    with pytest.raises(HomeError, match="config.toml: timezone 'Mars/Olympus' is not a known time zone"):
        HubConfig.from_toml('name = "x"\ntimezone = "Mars/Olympus"\n')
