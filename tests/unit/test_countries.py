"""The country table (bot/domain/countries.csv) and its look-ups (bot.domain.countries).

The file is read here with the csv module, apart from the module's parser, so the Country
objects are checked against the file itself; the counts are checked against what the file's
header says they are.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain import countries
from bot.domain.countries import Country, all_countries, lookup, suggest
from bot.domain.taxonomy import REGIONS

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT / "bot" / "domain" / "countries.csv"
TEXT = CSV.read_text(encoding="utf-8")
HEADER = "\n".join(line[2:] for line in TEXT.splitlines() if line.startswith("#"))
FLAT = " ".join(HEADER.split())  # the header with its line breaks as spaces
ROWS = list(csv.DictReader(line for line in TEXT.splitlines() if not line.startswith("#")))
M49_REGIONS = {"002": "Africa", "019": "Americas", "142": "Asia", "150": "Europe", "009": "Oceania"}


def by_alpha2() -> dict[str, Country]:
    return {c.alpha2: c for c in all_countries()}


def header_count(pattern: str) -> int:
    """A number the header states, found by a regular expression with one group."""
    found = re.search(pattern, HEADER, re.DOTALL)
    assert found, f"the header does not say {pattern!r}"
    return int(found.group(1))


# ---------------------------------------------------------------------------------------------
# The file


def test_one_row_per_country_and_every_row_loaded() -> None:
    assert len(ROWS) == len(all_countries()) == 248  # ISO 3166-1's 249 less Antarctica
    for column in ("alpha2", "alpha3", "numeric"):
        assert len({row[column] for row in ROWS}) == len(ROWS), f"a {column} code twice"
    assert [c.alpha2 for c in all_countries()] == [row["alpha2"] for row in ROWS]
    assert lookup("AQ") is None  # left out, and the header says why
    assert "Antarctica" in HEADER


def test_every_country_has_one_itu_region_and_one_m49_region() -> None:
    for c in all_countries():
        assert c.itu_region in REGIONS, c
        assert M49_REGIONS.get(c.m49_region_code) == c.m49_region, c
        assert re.fullmatch(r"[0-9]{3}", c.m49_subregion_code), c
        assert c.m49_subregion, c
    # every region the bot balances has countries in it
    assert set(Counter(c.itu_region for c in all_countries())) == set(REGIONS)


def test_the_flags_match_the_file() -> None:
    table = by_alpha2()
    for row in ROWS:
        c = table[row["alpha2"]]
        for flag in ("ldc", "lldc", "sids", "developing", "itu_member", "un_member"):
            assert getattr(c, flag) is (row[flag] == "1"), (row["alpha2"], flag)
        assert (c.alpha3, c.numeric, c.name, c.itu_region) == (
            row["alpha3"],
            row["numeric"],
            row["name"],
            row["itu_region"],
        )
        assert (c.m49_region, c.m49_subregion) == (row["m49_region"], row["m49_subregion"])


def test_the_header_names_every_source_with_its_address_and_date() -> None:
    for needle in (
        "pycountry 26.2.16",
        "https://pypi.org/project/pycountry/",
        "hdx-python-country 4.2.5",
        "https://unstats.un.org/unsd/methodology/m49/overview/",
        "historical-classification-of-developed-and-developing-regions",
        "https://www.un.org/ohrlls/content/list-ldcs",
        "https://www.un.org/ohrlls/content/list-lldcs",
        "https://www.un.org/ohrlls/content/list-sids",
        "https://www.itu.int/en/ITU-D/Regional-Presence/",
        "as at 13 December 2024",
        "HAND-ENTERED",
        "contrib/make_countries.py",
    ):
        assert needle in FLAT, needle
    assert re.search(r"Made \d{4}-\d{2}-\d{2} ", HEADER)


def test_counts_are_sane_and_as_the_header_states() -> None:
    table = all_countries()
    ldc = [c for c in table if c.ldc]
    lldc = [c for c in table if c.lldc]
    sids_un = [c for c in table if c.sids and c.un_member]
    sids_other = [c for c in table if c.sids and not c.un_member]
    assert 40 <= len(ldc) <= 50
    assert 30 <= len(lldc) <= 33
    assert 35 <= len(sids_un) <= 40
    assert len(ldc) == header_count(r"as at 13 December 2024: (\d+) countries")
    assert len(lldc) == header_count(r"as at 2024: (\d+) countries")
    assert len(sids_un) == header_count(r"as at 2024: (\d+) UN Member\s+States")
    assert len(sids_other) == header_count(r"UN Member\s+States and (\d+) non-UN members")
    assert sum(c.un_member for c in table) == 193
    assert sum(c.itu_member for c in table) == 193
    # LDCs and LLDCs are UN Member States
    assert all(c.un_member for c in ldc + lldc)
    assert all(c.developing for c in ldc)
    # ... but two LLDCs are in Europe, where M49's old rule says developed; the header says so
    assert {c.alpha2 for c in lldc if not c.developing} == {"MD", "MK"}
    assert "are not developing (developing 0): MD (Moldova, Republic of) and MK" in FLAT


def test_itu_regions_as_the_header_counts_them() -> None:
    members = Counter(c.itu_region for c in all_countries() if c.itu_member)
    stated = re.search(r"as at 2026:\s+(.*?)\.\n", HEADER, re.DOTALL)
    assert stated
    assert dict(
        (region, int(n)) for region, n in re.findall(r"([a-z-]+) (\d+)", stated.group(1))
    ) == dict(members)


def test_a_territory_has_the_itu_region_of_the_member_state_named() -> None:
    table = by_alpha2()
    by_hand = set()
    for c in all_countries():
        if c.itu_member:
            assert c.itu_via == "", c
        elif c.itu_via:
            state = table[c.itu_via]
            assert state.itu_member, c
            assert c.itu_region == state.itu_region, c
        else:
            by_hand.add(c.alpha2)
    # Palestine (observer), Palau (UN, not ITU), Taiwan, Western Sahara: each noted in the header
    assert by_hand == {"PS", "PW", "TW", "EH"}
    for code in by_hand:
        assert f"  {code} (" in HEADER


def test_developing_is_m49s_rule_stated_in_the_header() -> None:
    for c in all_countries():
        developed = (
            c.m49_region_code == "150"
            or c.m49_subregion_code in ("021", "053")
            or c.alpha3 == "JPN"
        )
        assert c.developing is not developed, c
    assert "Europe (150), Northern America (021), Australia and New Zealand (053) and Japan" in FLAT


def test_the_groups_of_some_countries_as_at_the_lists_dates() -> None:
    table = by_alpha2()
    # Nepal is on the LDC list as at 13 December 2024 (its graduation is set for November
    # 2026 and is, as the header says, not applied) and is landlocked.
    assert (table["NP"].ldc, table["NP"].lldc, table["NP"].sids) == (True, True, False)
    assert "Nepal (24 November 2026)" in FLAT
    # Bhutan left the LDC list in December 2023, Sao Tome and Principe in December 2024.
    assert (table["BT"].ldc, table["BT"].lldc) == (False, True)
    assert (table["ST"].ldc, table["ST"].sids) == (False, True)
    # Solomon Islands: still an LDC (graduation scheduled for 2027), and a SIDS.
    assert (table["SB"].ldc, table["SB"].sids) == (True, True)
    assert (table["HT"].ldc, table["HT"].sids) == (True, True)
    # SIDS that are not UN members: the associate members of the regional commissions
    assert (table["PR"].sids, table["PR"].un_member) == (True, False)
    some = {code: (table[code].itu_region, table[code].developing) for code in table}
    assert some["JP"] == ("asia-pacific", False)
    assert some["BR"] == ("americas", True)
    assert some["EG"] == ("arab-states", True)
    assert some["KZ"] == ("cis", True)
    assert some["NG"] == ("africa", True)
    assert some["DE"] == ("europe", False)
    assert table["EG"].m49_region == "Africa"


# ---------------------------------------------------------------------------------------------
# lookup


@pytest.mark.parametrize(
    ("text", "alpha2"),
    [
        ("Japan", "JP"),
        ("JP", "JP"),
        ("jp", "JP"),
        ("jpn", "JP"),
        ("JPN", "JP"),
        ("392", "JP"),
        ("0392", "JP"),
        ("  japan ", "JP"),
        ("JAPAN", "JP"),
        ("Nepal", "NP"),
        ("Federal Democratic Republic of Nepal", "NP"),  # official name
        ("4", "AF"),
        ("004", "AF"),
        ("South Korea", "KR"),  # common names
        ("North Korea", "KP"),
        ("Korea, Republic of", "KR"),  # the ISO name
        ("Republic of Korea", "KR"),  # the M49 name
        ("Bolivia", "BO"),
        ("Vietnam", "VN"),
        ("Viet Nam", "VN"),
        ("Russia", "RU"),
        ("Iran", "IR"),
        ("Tanzania", "TZ"),
        ("Laos", "LA"),
        ("Syria", "SY"),
        ("Taiwan", "TW"),
        ("Palestine", "PS"),
        ("UK", "GB"),
        ("Great Britain", "GB"),
        ("United Kingdom of Great Britain and Northern Ireland", "GB"),
        ("USA", "US"),
        ("United States of America", "US"),
        ("Côte d'Ivoire", "CI"),
        ("cote d'ivoire", "CI"),
        ("Cote dIvoire", "CI"),
        ("Ivory Coast", "CI"),
        ("Türkiye", "TR"),
        ("Turkiye", "TR"),
        ("Turkey", "TR"),
        ("Cape Verde", "CV"),
        ("Cabo Verde", "CV"),
        ("Swaziland", "SZ"),
        ("Eswatini", "SZ"),
        ("Czech Republic", "CZ"),
        ("Burma", "MM"),
        ("DRC", "CD"),
        ("Democratic Republic of the Congo", "CD"),
        ("Congo", "CG"),  # as ISO 3166-1 names it
        ("Republic of the Congo", "CG"),
        ("The Gambia", "GM"),
        ("St Kitts & Nevis", "KN"),
        ("St. Lucia", "LC"),
        ("Saint Lucia", "LC"),
        ("Åland Islands", "AX"),
        ("Aland Islands", "AX"),
        ("Curaçao", "CW"),
        ("Hong Kong", "HK"),
        ("ST", "ST"),  # a code, though "St" is also short for "Saint"
        ("Sao Tome and Principe", "ST"),
        ("São Tomé and Príncipe", "ST"),
    ],
)
def test_lookup_by_code_and_name(text: str, alpha2: str) -> None:
    found = lookup(text)
    assert found is not None, text
    assert found.alpha2 == alpha2


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Atlantis",
        "Korea",
        "Saint",
        "XX",
        "ZZZ",
        "999",
        "0",
        "12345",
        "Kosovo",
        "a" * 500,
    ],
)
def test_lookup_of_what_names_no_single_country_is_none(text: str) -> None:
    assert lookup(text) is None


def test_every_name_and_alias_in_the_file_finds_its_own_row() -> None:
    for row in ROWS:
        spellings = [row["alpha2"], row["alpha3"], row["numeric"], row["name"]]
        spellings += [row["official_name"]] if row["official_name"] else []
        spellings += [a for a in row["aliases"].split("|") if a]
        for spelling in spellings:
            found = lookup(spelling)
            assert found is not None, (row["alpha2"], spelling)
            assert found.alpha2 == row["alpha2"], (row["alpha2"], spelling)
            assert lookup(spelling.upper()) == found
            assert lookup(spelling.lower()) == found


# ---------------------------------------------------------------------------------------------
# suggest


def test_suggest_offers_the_country_meant() -> None:
    assert "Nepal" in suggest("Nepl")
    assert suggest("Nepl")[0] == "Nepal"
    assert suggest("Swtzerland")[0] == "Switzerland"
    assert suggest("Camaroon")[0] == "Cameroon"
    assert suggest("Marshal Islands")[0] == "Marshall Islands"
    assert "Bosnia and Herzegovina" in suggest("bosnia")
    assert "Bosnia and Herzegovina" in suggest("Herzegovina")
    assert set(suggest("Korea", n=2)) == {
        "Korea, Republic of",
        "Korea, Democratic People's Republic of",
    }
    assert {"Congo", "Congo, The Democratic Republic of the"} <= set(suggest("Congo"))
    assert "Japan" in suggest("JPM")


def test_suggest_is_bounded_and_quiet_on_nothing() -> None:
    assert suggest("") == []
    assert suggest("x") == []
    assert suggest("qqqqqqqqqq") == []
    assert suggest("Nepal", n=0) == []
    assert len(suggest("Guinea", n=2)) == 2
    assert len(suggest("Guinea", n=10)) > 3
    assert suggest("a" * 500) == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.integers(min_value=0, max_value=5))
def test_lookup_and_suggest_take_any_text(text: str, n: int) -> None:
    lookup(text)
    names = suggest(text, n)
    assert len(names) <= n
    assert len(set(names)) == len(names)
    for name in names:
        assert lookup(name) is not None


# ---------------------------------------------------------------------------------------------
# Loading and packaging


def test_importing_the_module_reads_no_file() -> None:
    code = (
        "import builtins, importlib.resources as r\n"
        "def refuse(*a, **k): raise AssertionError('I/O at import')\n"
        "saved = (builtins.open, r.files)\n"
        "builtins.open, r.files = refuse, refuse\n"
        "import bot.domain.countries as c\n"
        "builtins.open, r.files = saved\n"
        "assert c._table.cache_info().currsize == 0\n"
        "assert c.lookup('JP').name == 'Japan'\n"
        "assert c._table.cache_info().currsize == 1\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_table_is_read_once() -> None:
    assert all_countries() is all_countries()
    assert countries._table.cache_info().currsize == 1


def test_the_csv_ships_with_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = pyproject["tool"]["setuptools"]
    assert "bot.domain" in setuptools["packages"]
    assert countries.DATA_FILE in setuptools["package-data"]["bot.domain"]
    assert (ROOT / "bot" / "domain" / countries.DATA_FILE).is_file()
    # no runtime dependency for it: the generator's packages are an extra
    runtime = " ".join(pyproject["project"]["dependencies"])
    assert "pycountry" not in runtime
    assert "hdx" not in runtime


def _with(text: str, alpha2: str, column: str, value: str) -> str:
    """The CSV with one cell of one row changed, its header comments kept."""
    lines = text.splitlines(keepends=True)
    comments = [line for line in lines if line.startswith("#")]
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    for row in rows[1:]:
        if row[0] == alpha2:
            row[rows[0].index(column)] = value
    out = io.StringIO()
    out.writelines(comments)
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_parse_reads_the_file_as_the_loader_does() -> None:
    assert countries.parse(TEXT) == all_countries()


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("itu_region", "oceania", "ITU region"),
        ("ldc", "yes", "not 0 or 1"),
        ("alpha2", "J", "malformed code"),
        ("numeric", "39", "no numeric code"),
        ("m49_region", "", "no M49 region"),
    ],
)
def test_parse_refuses_a_broken_table(column: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        countries.parse(_with(TEXT, "JP", column, value))


def test_parse_refuses_other_columns_and_index_refuses_shared_names() -> None:
    with pytest.raises(ValueError, match="columns"):
        countries.parse("alpha2,name\nJP,Japan\n")
    broken = _with(TEXT, "JP", "aliases", "Nepal")
    with pytest.raises(ValueError, match="names"):
        countries._index(countries.parse(broken))
