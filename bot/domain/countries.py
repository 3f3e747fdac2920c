"""Countries and territories: their ITU-D region, UN M49 region and UN development groups.

The group wants every region, and developing countries in particular, to take part; this module
tells, for a country an applicant names, which ITU region (in `bot.domain.taxonomy`'s names)
and which UN groups it is in: least developed country (LDC), landlocked developing country
(LLDC), small island developing State (SIDS), and developing under M49's old developed/developing
split.

The data is `countries.csv` beside this module, made by contrib/make_countries.py; the CSV's
header names each source with its URL and date, says which lists were typed in by hand, and
defines every column. It is read once, on first use (`functools.cache`): importing this module
does no I/O. Pure: standard library only.

`lookup` takes an ISO 3166-1 alpha-2, alpha-3 or numeric code, the ISO name, the official name,
or a common name ("Japan", "jp", "JPN", "392", "South Korea", "Côte d'Ivoire", "cote divoire"),
ignoring case, accents and punctuation; `suggest` offers close names for a "did you mean".
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cache
from importlib import resources

from bot.domain.taxonomy import REGIONS

DATA_FILE = "countries.csv"
# Longer input names no country: it is not looked up (and difflib's cost stays bounded).
MAX_INPUT = 120
# How alike a name must be to be suggested (difflib's ratio, its own default cutoff).
SUGGEST_CUTOFF = 0.6
# The score of a name that starts with the input, or has a word that does ("bosnia",
# "herzegovina"), from three characters on: long names are found by their beginning.
PREFIX_SCORE = 0.8


@dataclass(frozen=True, slots=True)
class Country:
    """One ISO 3166-1 country or territory, as one row of the CSV (its header defines each
    column and its source)."""

    alpha2: str  # "JP"
    alpha3: str  # "JPN"
    numeric: str  # "392", always three digits
    name: str  # the ISO 3166-1 English short name: "Korea, Republic of"
    itu_region: str  # one of bot.domain.taxonomy.REGIONS
    m49_region: str  # "Asia"
    m49_subregion: str  # "Eastern Asia"
    ldc: bool  # least developed country
    lldc: bool  # landlocked developing country
    sids: bool  # small island developing State (UN member or not)
    developing: bool  # not in M49's developed regions
    official_name: str  # "" where ISO gives none
    m49_region_code: str  # "142"
    m49_subregion_code: str  # "030"
    m49_intermediate: str  # "" or, say, "Caribbean" (within "Latin America and the Caribbean")
    m49_intermediate_code: str
    itu_member: bool  # an ITU Member State
    itu_via: str  # for a territory: the alpha-2 of the Member State whose ITU region it has
    un_member: bool  # a UN Member State
    aliases: tuple[str, ...]  # other names it is known by


COLUMNS = (
    "alpha2",
    "alpha3",
    "numeric",
    "name",
    "official_name",
    "itu_region",
    "itu_member",
    "itu_via",
    "un_member",
    "m49_region_code",
    "m49_region",
    "m49_subregion_code",
    "m49_subregion",
    "m49_intermediate_code",
    "m49_intermediate",
    "ldc",
    "lldc",
    "sids",
    "developing",
    "aliases",
)
_FLAGS = ("itu_member", "un_member", "ldc", "lldc", "sids", "developing")


def normal(text: str) -> str:
    """The form names are compared in: case-folded, without accents, "&" as "and",
    apostrophes dropped, other punctuation as spaces, "St"/"Ste" as "Saint"/"Sainte", a
    leading "the" dropped. `normal("St. Kitts & Nevis") == "saint kitts and nevis"`.

    contrib/make_countries.py uses it too, to drop names two countries share."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in decomposed if not unicodedata.combining(c))
    text = text.replace("&", " and ").replace("'", "").replace("’", "")
    words = re.sub(r"[^0-9a-z]+", " ", text).split()
    words = ["saint" if w == "st" else "sainte" if w == "ste" else w for w in words]
    if words[:1] == ["the"]:
        words = words[1:]
    return " ".join(words)


@dataclass(frozen=True, slots=True)
class _Table:
    countries: tuple[Country, ...]
    by_code: dict[str, Country]  # "JP", "JPN", "392"
    by_name: dict[str, Country]  # normal form of every name -> its country
    names: tuple[tuple[str, Country], ...]  # (normal form, country) of every name
    codes: tuple[tuple[str, Country], ...]  # ("jp", Japan), ("jpn", Japan)


def parse(text: str) -> tuple[Country, ...]:
    """The countries of a CSV in the format of countries.csv. Raises ValueError on a missing
    column, a flag that is not 0 or 1, an ITU region taxonomy does not name, or a code twice."""
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    if tuple(rows.fieldnames or ()) != COLUMNS:
        raise ValueError(f"countries: columns {rows.fieldnames}, expected {COLUMNS}")
    countries = []
    for row in rows:
        where = f"countries: {row['alpha2']}"
        flags = {}
        for column in _FLAGS:
            if row[column] not in ("0", "1"):
                raise ValueError(f"{where}: {column} is {row[column]!r}, not 0 or 1")
            flags[column] = row[column] == "1"
        if row["itu_region"] not in REGIONS:
            raise ValueError(f"{where}: ITU region {row['itu_region']!r} is not one of {REGIONS}")
        if not re.fullmatch(r"[A-Z]{2}", row["alpha2"]) or not re.fullmatch(
            r"[A-Z]{3}", row["alpha3"]
        ):
            raise ValueError(f"{where}: malformed code {row['alpha2']!r}/{row['alpha3']!r}")
        if not re.fullmatch(r"[0-9]{3}", row["numeric"]) or not row["m49_region"]:
            raise ValueError(f"{where}: no numeric code or no M49 region")
        countries.append(
            Country(
                alpha2=row["alpha2"],
                alpha3=row["alpha3"],
                numeric=row["numeric"],
                name=row["name"],
                itu_region=row["itu_region"],
                m49_region=row["m49_region"],
                m49_subregion=row["m49_subregion"],
                ldc=flags["ldc"],
                lldc=flags["lldc"],
                sids=flags["sids"],
                developing=flags["developing"],
                official_name=row["official_name"],
                m49_region_code=row["m49_region_code"],
                m49_subregion_code=row["m49_subregion_code"],
                m49_intermediate=row["m49_intermediate"],
                m49_intermediate_code=row["m49_intermediate_code"],
                itu_member=flags["itu_member"],
                itu_via=row["itu_via"],
                un_member=flags["un_member"],
                aliases=tuple(a for a in row["aliases"].split("|") if a),
            )
        )
    return tuple(countries)


def _index(countries: tuple[Country, ...]) -> _Table:
    """The look-up tables. Raises ValueError if a name names two countries, or a name of
    two or three letters is another country's code (the code would win)."""
    by_code: dict[str, Country] = {}
    for country in countries:
        for code in (country.alpha2, country.alpha3, country.numeric):
            if by_code.setdefault(code, country) is not country:
                raise ValueError(f"countries: code {code} twice")
    by_name: dict[str, Country] = {}
    for country in countries:
        for name in (country.name, country.official_name, *country.aliases):
            key = normal(name)
            if not key:
                continue
            owner = by_name.setdefault(key, by_code.get(key.upper(), country))
            if owner is not country:
                raise ValueError(f"countries: {name!r} names {owner.alpha2} and {country.alpha2}")
    codes = tuple(
        (code.lower(), country)
        for country in countries
        for code in (country.alpha2, country.alpha3)
    )
    return _Table(countries, by_code, by_name, tuple(by_name.items()), codes)


@cache
def _table() -> _Table:
    text = resources.files("bot.domain").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return _index(parse(text))


def all_countries() -> tuple[Country, ...]:
    """Every country and territory in the table, by alpha-2 code."""
    return _table().countries


def lookup(text: str) -> Country | None:
    """The country `text` names, by code (alpha-2, alpha-3, numeric with or without leading
    zeros) or by name (ISO, official or common), ignoring case, accents and punctuation; None
    if it names none, or names more than one ("Korea"). A code wins over a name: "ST" is Sao
    Tome and Principe even though "St" is short for "Saint"."""
    text = text.strip()
    if not text or len(text) > MAX_INPUT:
        return None
    table = _table()
    if re.fullmatch(r"[0-9]+", text):
        digits = text.lstrip("0")
        return table.by_code.get(digits.zfill(3)) if len(digits) <= 3 else None
    if re.fullmatch(r"[A-Za-z]{2,3}", text) and (found := table.by_code.get(text.upper())):
        return found
    return table.by_name.get(normal(text))


def suggest(text: str, n: int = 3) -> list[str]:
    """Up to `n` country names close to `text`, best first, for a "did you mean": names and
    alpha codes at least as alike as difflib's usual cutoff, and, from three characters on,
    names that start with `text` or have a word that does ("bosnia", "herzegovina"; the shorter
    such name first). Each country once, by its ISO name; [] for text under two characters."""
    text = text.strip()
    key = normal(text)
    if len(key) < 2 or len(text) > MAX_INPUT or n < 1:
        return []
    table = _table()
    best: dict[str, tuple[float, str]] = {}

    def consider(query: str, candidates: tuple[tuple[str, Country], ...], prefix: bool) -> None:
        matcher = SequenceMatcher(autojunk=False)
        matcher.set_seq2(query)
        for candidate, country in candidates:
            score = 0.0
            if prefix and (candidate.startswith(query) or f" {query}" in candidate):
                score = PREFIX_SCORE + 0.1 * len(query) / len(candidate)
            matcher.set_seq1(candidate)
            floor = max(score, SUGGEST_CUTOFF)  # the cheap upper bounds first, as difflib does
            if matcher.real_quick_ratio() >= floor and matcher.quick_ratio() >= floor:
                score = max(score, matcher.ratio())
            if score >= SUGGEST_CUTOFF and score > best.get(country.alpha2, (0.0, ""))[0]:
                best[country.alpha2] = (score, country.name)

    consider(key, table.names, prefix=len(key) >= 3)
    if len(text) <= 3:
        consider(text.lower(), table.codes, prefix=False)
    ranked = sorted(best.values(), key=lambda item: (-item[0], item[1]))
    return [name for _, name in ranked[:n]]
