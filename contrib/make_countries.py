"""Make bot/domain/countries.csv, the country table bot.domain.countries reads.

The bot never runs this: it reads the CSV that this script wrote and that is committed beside
the module. Run it again when a source changes (a graduation from the LDC list, a new ISO code,
a change in ITU's regional presence), then review the diff of the CSV and commit both files.

    python3 -m venv /tmp/countries-venv
    /tmp/countries-venv/bin/pip install --no-deps pycountry==26.2.16 hdx-python-country==4.2.5
    /tmp/countries-venv/bin/python contrib/make_countries.py [--date YYYY-MM-DD]

(`pip install '.[countries-data]'` pins the same two packages; `--no-deps` is enough because
the script imports pycountry and only reads a data file out of hdx-python-country.)

The script lives outside bot/domain because the domain imports only the standard library
(tests/unit/test_layering.py); the table it writes is plain CSV that the domain parses itself.

Where each column comes from:

- ISO 3166-1 codes and English names: pycountry (its data is Debian's iso-codes).
- UN M49 region, sub-region and intermediate region, and extra spellings of names: the HDX
  "Countries & Territories Taxonomy" file shipped in hdx-python-country, whose region columns
  are UNSD's M49 overview.
- developing/developed: derived here from the M49 region columns by the rule M49 used (see
  DEVELOPED_* below).
- LDC, LLDC, SIDS, the ITU-D region of each ITU Member State, and UN membership: typed in by
  hand below from the UN and ITU lists named in HEADER, since no package on the registries this
  project can reach carries them current. Each list says its date; check it against its source
  before regenerating.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.metadata
import importlib.resources
import io
import re
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pycountry

from bot.domain.countries import normal  # the one normal form names are looked up by

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bot" / "domain" / "countries.csv"
HDX_FILE = "Countries & Territories Taxonomy MVP - C&T Taxonomy.csv"

# --------------------------------------------------------------------------------------------
# ITU: the 193 Member States by ITU-D region (the regions of ITU's regional presence: the
# regional offices for Africa, the Americas, the Arab States, Asia and the Pacific, the CIS and
# Europe). Hand-entered.


def codes(text: str) -> tuple[str, ...]:
    """A list of codes written as words: "AGO BDI BEN" -> ("AGO", "BDI", "BEN")."""
    return tuple(text.split())


ITU_MEMBERS: dict[str, tuple[str, ...]] = {
    "africa": codes(
        """
        AGO BDI BEN BFA BWA CAF CIV CMR COD COG CPV ERI ETH GAB GHA GIN GMB GNB GNQ KEN LBR LSO
        MDG MLI MOZ MUS MWI NAM NER NGA RWA SEN SLE SSD STP SWZ SYC TCD TGO TZA UGA ZAF ZMB ZWE
        """
    ),
    "americas": codes(
        """
        ARG ATG BHS BLZ BOL BRA BRB CAN CHL COL CRI CUB DMA DOM ECU GRD GTM GUY HND HTI JAM KNA
        LCA MEX NIC PAN PER PRY SLV SUR TTO URY USA VCT VEN
        """
    ),
    "arab-states": codes(
        """
        ARE BHR COM DJI DZA EGY IRQ JOR KWT LBN LBY MAR MRT OMN QAT SAU SDN SOM SYR TUN YEM
        """
    ),
    "asia-pacific": codes(
        """
        AFG AUS BGD BRN BTN CHN FJI FSM IDN IND IRN JPN KHM KIR KOR LAO LKA MDV MHL MMR MNG MYS
        NPL NRU NZL PAK PHL PNG PRK SGP SLB THA TLS TON TUV VNM VUT WSM
        """
    ),
    "cis": codes("ARM AZE BLR KAZ KGZ RUS TJK TKM UZB"),
    "europe": codes(
        """
        ALB AND AUT BEL BGR BIH CHE CYP CZE DEU DNK ESP EST FIN FRA GBR GEO GRC HRV HUN IRL ISL
        ISR ITA LIE LTU LUX LVA MCO MDA MKD MLT MNE NLD NOR POL PRT ROU SMR SRB SVK SVN SWE TUR
        UKR VAT
        """
    ),
}

# Territories that are not ITU Member States take the region of the Member State that
# administers them (or with which they are freely associated): alpha-2 -> that state.
ADMINISTERED_BY: dict[str, str] = {
    **dict.fromkeys(codes("CC CX HM NF"), "AU"),
    **dict.fromkeys(codes("HK MO"), "CN"),
    **dict.fromkeys(codes("FO GL"), "DK"),
    **dict.fromkeys(codes("AX"), "FI"),
    **dict.fromkeys(codes("BL GF GP MF MQ NC PF PM RE TF WF YT"), "FR"),
    **dict.fromkeys(codes("AW BQ CW SX"), "NL"),  # the Kingdom of the Netherlands
    **dict.fromkeys(codes("CK NU TK"), "NZ"),  # the Cook Islands and Niue: free association
    **dict.fromkeys(codes("BV SJ"), "NO"),
    **dict.fromkeys(codes("AI BM FK GG GI GS IM IO JE KY MS PN SH TC VG"), "GB"),
    **dict.fromkeys(codes("AS GU MP PR UM VI"), "US"),
}

# Neither an ITU Member State nor administered by one the rule above can use: placed by hand.
ITU_OTHERS: dict[str, tuple[str, str]] = {
    "PS": (
        "arab-states",
        "State of Palestine: an ITU observer (PP Resolution 99), in the Arab States region",
    ),
    "PW": ("asia-pacific", "Palau: a UN member but not an ITU Member State; placed by geography"),
    "TW": ("asia-pacific", "Taiwan: not an ITU Member State; placed by geography"),
    "EH": (
        "africa",
        "Western Sahara: not an ITU Member State, status disputed; placed by its M49 region",
    ),
}

# Left out, with the reason written into the header.
OMITTED: dict[str, str] = {
    "AQ": "Antarctica: no M49 region, no ITU region, no state",
}

# --------------------------------------------------------------------------------------------
# UN groups, hand-entered from the lists named in HEADER.

# The 193 UN Member States are the ITU Member States less the Holy See (a UN observer), plus
# Palau (a UN member that has not joined ITU).
UN_NOT_ITU = codes("PLW")
ITU_NOT_UN = codes("VAT")

# Least developed countries: the 44 on the list as at 13 December 2024, after Bhutan left it
# (13 December 2023) and Sao Tome and Principe left it (13 December 2024).
LDC = codes(
    """
    AGO BDI BEN BFA CAF COD COM DJI ERI ETH GIN GMB GNB LBR LSO MDG MLI MOZ MRT MWI NER RWA
    SDN SEN SLE SOM SSD TCD TGO TZA UGA ZMB
    AFG BGD KHM LAO MMR NPL TLS YEM
    HTI
    KIR SLB TUV
    """
)  # Africa 32; Asia 8; the Americas 1; the Pacific 3

# Scheduled to leave the LDC list after the list's date; NOT applied (each stays an LDC here
# until the list is updated by hand after the graduation has taken effect).
LDC_SCHEDULED = (
    "Bangladesh, Lao PDR and Nepal (24 November 2026); Solomon Islands (13 December 2027)"
)

# Landlocked developing countries (32).
LLDC = codes(
    """
    AFG ARM AZE BDI BFA BOL BTN BWA CAF ETH KAZ KGZ LAO LSO MDA MKD MLI MNG MWI NER NPL PRY
    RWA SSD SWZ TCD TJK TKM UGA UZB ZMB ZWE
    """
)

# Small island developing States: 37 UN Member States ...
SIDS_UN = codes(
    """
    ATG BHS BLZ BRB CUB DMA DOM GRD GUY HTI JAM KNA LCA SUR TTO VCT
    FJI FSM KIR MHL NRU PLW PNG SLB TLS TON TUV VUT WSM
    COM CPV GNB MDV MUS SGP STP SYC
    """
)  # the Caribbean 16; the Pacific 13; Atlantic, Indian Ocean and South China Sea 8
# ... and 20 non-UN members or associate members of the UN regional commissions.
SIDS_OTHER = codes(
    """
    ABW AIA ASM BMU COK CUW CYM GLP GUM MNP MSR MTQ NCL NIU PRI PYF SXM TCA VGB VIR
    """
)

# M49's developed regions: Europe, Northern America, Australia and New Zealand, and Japan.
DEVELOPED_REGIONS = codes("150")  # Europe
DEVELOPED_SUBREGIONS = codes("021 053")  # Northern America; Australia and New Zealand
DEVELOPED_COUNTRIES = codes("JPN")

# Everyday names the sources do not carry. A name that two countries share is dropped.
EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "ARE": ("UAE", "Emirates"),
    "BOL": ("Bolivia",),
    "BRN": ("Brunei",),
    "CIV": ("Ivory Coast",),
    "COD": ("DRC", "Congo-Kinshasa", "Congo Kinshasa"),
    "COG": ("Congo-Brazzaville", "Congo Brazzaville", "Republic of Congo"),
    "CPV": ("Cape Verde",),
    "CZE": ("Czech Republic",),
    "FSM": ("Micronesia",),
    "GBR": ("UK", "Great Britain", "Britain"),
    "IRN": ("Iran",),
    "KOR": ("South Korea",),
    "LAO": ("Laos",),
    "MDA": ("Moldova",),
    "MKD": ("Macedonia",),
    "MMR": ("Burma",),
    "PRK": ("North Korea",),
    "PSE": ("Palestine",),
    "RUS": ("Russia",),
    "SWZ": ("Swaziland",),
    "SYR": ("Syria",),
    "TLS": ("East Timor",),
    "TUR": ("Turkey",),
    "TWN": ("Taiwan",),
    "TZA": ("Tanzania",),
    "USA": ("United States",),
    "VAT": ("Vatican", "Vatican City"),
    "VEN": ("Venezuela",),
    "VNM": ("Vietnam",),
}

COLUMNS = codes(
    """
    alpha2 alpha3 numeric name official_name itu_region itu_member itu_via un_member
    m49_region_code m49_region m49_subregion_code m49_subregion
    m49_intermediate_code m49_intermediate ldc lldc sids developing aliases
    """
)

HEADER = """\
Countries and territories of ISO 3166-1 with their ITU-D region, UN M49 region and UN
development groups. One row per country or territory. Lines starting with # are comments.
Made {made} by contrib/make_countries.py (run it to regenerate; it documents each step).

Sources
- ISO 3166-1 alpha-2, alpha-3, numeric codes and English short/official names: pycountry
  {pycountry_version} (https://pypi.org/project/pycountry/), whose data is Debian iso-codes
  (https://salsa.debian.org/iso-codes-team/iso-codes).
- UN M49 region, sub-region and intermediate region (codes and names): UNSD, "Standard country
  or area codes for statistical use (M49)", overview table
  (https://unstats.un.org/unsd/methodology/m49/overview/), as carried by the HDX Countries &
  Territories Taxonomy (https://data.humdata.org/dataset/countries-and-territories) in the file
  shipped in hdx-python-country {hdx_version} (https://pypi.org/project/hdx-python-country/).
  M49 has no version number; this is the M49 table as HDX held it for that release. M49 lists
  no separate row for Taiwan: its M49 columns are HDX's (Asia / Eastern Asia, code 158).
  Extra spellings of names (the aliases column) come from the same HDX file and pycountry.
- developing: 1 unless the row is in one of M49's "developed regions", which M49 defined as
  Europe (150), Northern America (021), Australia and New Zealand (053) and Japan ("In common
  practice, Japan in Asia, Canada and the United States in Northern America, Australia and New
  Zealand in Oceania, and Europe are considered developed regions or areas"). UNSD removed the
  developed/developing distinction from M49 in 2021 and keeps the old one as "Historical
  classification of developed and developing regions"
  (https://unstats.un.org/unsd/methodology/m49/historical-classification-of-developed-and-developing-regions/).
  This column applies that historical M49 rule to the M49 regions above; it is not a current UN
  classification and says nothing about income. By it, these landlocked developing countries
  (lldc 1) are not developing (developing 0): {lldc_developed}.
- ldc: UN list of least developed countries (UN DESA / Committee for Development Policy,
  https://www.un.org/development/desa/dpad/least-developed-country-category.html; UN-OHRLLS,
  https://www.un.org/ohrlls/content/list-ldcs), as at 13 December 2024: {n_ldc} countries, after
  Bhutan graduated on 13 December 2023 and Sao Tome and Principe on 13 December 2024.
  HAND-ENTERED from that list. Scheduled graduations after that date are NOT applied:
  {ldc_scheduled}.
- lldc: UN-OHRLLS list of landlocked developing countries
  (https://www.un.org/ohrlls/content/list-lldcs), as at 2024: {n_lldc} countries. HAND-ENTERED.
- sids: UN-OHRLLS list of small island developing States
  (https://www.un.org/ohrlls/content/list-sids; also UN DESA,
  https://sdgs.un.org/topics/small-island-developing-states), as at 2024: {n_sids_un} UN Member
  States and {n_sids_other} non-UN members or associate members of UN regional commissions.
  HAND-ENTERED.
- itu_region: ITU-D regional presence (https://www.itu.int/en/ITU-D/Regional-Presence/): the
  regions of the ITU regional offices, named as bot/domain/taxonomy.py names them (africa,
  americas, arab-states, asia-pacific, cis, europe). HAND-ENTERED for the {n_itu} ITU Member
  States as at 2026:
    {itu_counts}.
  The CIS region is the nine states of the ITU Regional Office for the CIS (Armenia, Azerbaijan,
  Belarus, Kazakhstan, Kyrgyzstan, Russian Federation, Tajikistan, Turkmenistan, Uzbekistan);
  Georgia, the Republic of Moldova and Ukraine, counted in the CIS region in older ITU material
  (2009), are placed in Europe, as is Israel. This split is the least certain part of the file.
  itu_member is 1 for an ITU Member State. A territory that is not one has the region of the
  Member State that administers it (or, for the Cook Islands and Niue, with which it is freely
  associated), named in itu_via. Placed by hand, itu_via empty:
{itu_others}
- un_member: the ITU Member States less the Holy See, plus Palau ({n_un} UN Member States).

Left out
{omitted}

Columns: 0/1 flags; codes as in their standard (numeric and M49 codes zero-padded to three
digits); aliases are other names separated by "|".
"""


def hdx_rows() -> dict[str, dict[str, str]]:
    """The HDX taxonomy rows that have an ISO alpha-3 code, by that code."""
    text = (importlib.resources.files("hdx.location") / HDX_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return {r["ISO 3166-1 Alpha 3-Codes"]: r for r in rows if r["ISO 3166-1 Alpha 3-Codes"]}


def require(condition: bool, message: str) -> None:
    """Stop with `message` unless `condition` holds (an assert would vanish under -O)."""
    if not condition:
        raise SystemExit(f"make_countries: {message}")


def code3(value: str) -> str:
    return value.zfill(3) if value else ""


def clean_alias(text: str) -> str:
    """An HDX spelling without ISO's "(the)": "Gambia (the)" -> "Gambia"."""
    text = text.strip()
    return re.sub(r"\s*\(the\)", "", text)


def flag(value: bool) -> str:
    return "1" if value else "0"


def check_lists(iso3: set[str]) -> None:
    members = [c for codes in ITU_MEMBERS.values() for c in codes]
    dupes = [c for c, k in Counter(members).items() if k > 1]
    require(not dupes, f"in two ITU regions: {dupes}")
    require(len(members) == 193, f"ITU has 193 Member States, the lists have {len(members)}")
    for name, group in [
        ("ITU", members),
        ("LDC", LDC),
        ("LLDC", LLDC),
        ("SIDS", SIDS_UN + SIDS_OTHER),
    ]:
        unknown = sorted(set(group) - iso3)
        require(not unknown, f"{name}: not ISO 3166-1 alpha-3: {unknown}")
        require(len(set(group)) == len(group), f"{name}: a code twice")
    sizes = (len(LDC), len(LLDC), len(SIDS_UN), len(SIDS_OTHER))
    require(
        sizes == (44, 32, 37, 20),
        f"lists of {sizes}: a list changed, update its date in HEADER and this check",
    )
    un = (set(members) - set(ITU_NOT_UN)) | set(UN_NOT_ITU)
    require(len(un) == 193, f"{len(un)} UN Member States")
    require(set(SIDS_UN) <= un, "a UN-member SIDS is not a UN member")
    require(not set(SIDS_OTHER) & un, "a non-UN SIDS is a UN member")
    require(set(LDC) | set(LLDC) <= un, "an LDC or LLDC is not a UN member")


def build(made: str) -> str:
    iso = {c.alpha_3: c for c in pycountry.countries}
    hdx = hdx_rows()
    require(set(iso) == set(hdx), f"ISO codes pycountry and HDX differ on: {set(iso) ^ set(hdx)}")
    check_lists(set(iso))
    itu_of = {code: region for region, codes in ITU_MEMBERS.items() for code in codes}
    alpha3_of = {c.alpha_2: c.alpha_3 for c in iso.values()}
    un = (set(itu_of) - set(ITU_NOT_UN)) | set(UN_NOT_ITU)

    rows: list[dict[str, str]] = []
    for a3 in sorted(iso, key=lambda k: iso[k].alpha_2):
        c = iso[a3]
        if c.alpha_2 in OMITTED:
            continue
        h = hdx[a3]
        require(h["ISO 3166-1 Alpha 2-Codes"] == c.alpha_2, f"{a3}: alpha-2 differs")
        require(int(h["m49 numerical code"]) == int(c.numeric), f"{a3}: numeric differs")
        if a3 in itu_of:
            region, via = itu_of[a3], ""
        elif c.alpha_2 in ADMINISTERED_BY:
            via = ADMINISTERED_BY[c.alpha_2]
            region = itu_of[alpha3_of[via]]
        else:
            region, via = ITU_OTHERS[c.alpha_2][0], ""
        m49_region, m49_sub = code3(h["Region Code"]), code3(h["Sub-region Code"])
        require(bool(m49_region and m49_sub), f"{a3}: no M49 region")
        developed = (
            m49_region in DEVELOPED_REGIONS
            or m49_sub in DEVELOPED_SUBREGIONS
            or a3 in DEVELOPED_COUNTRIES
        )
        official = getattr(c, "official_name", "") or ""
        if official == c.name:
            official = ""
        spellings = [
            getattr(c, "common_name", "") or "",
            *(
                h[k]
                for k in (
                    "Preferred Term",
                    "M49 English",
                    "English Short",
                    "English Formal",
                    "ISO Alt Term",
                    "DGACM Alt Term",
                    "HPC Tools Alt Term",
                    "RW Short Name",
                    "RW API Alt Term",
                )
            ),
            *EXTRA_ALIASES.get(a3, ()),
        ]
        rows.append(
            {
                "alpha2": c.alpha_2,
                "alpha3": a3,
                "numeric": c.numeric,
                "name": c.name,
                "official_name": official,
                "itu_region": region,
                "itu_member": flag(a3 in itu_of),
                "itu_via": via,
                "un_member": flag(a3 in un),
                "m49_region_code": m49_region,
                "m49_region": h["Region Name"],
                "m49_subregion_code": m49_sub,
                "m49_subregion": h["Sub-region Name"],
                "m49_intermediate_code": code3(h["Intermediate Region Code"]),
                "m49_intermediate": h["Intermediate Region Name"],
                "ldc": flag(a3 in LDC),
                "lldc": flag(a3 in LLDC),
                "sids": flag(a3 in SIDS_UN or a3 in SIDS_OTHER),
                "developing": flag(not developed),
                "aliases": "|".join(clean_alias(s) for s in spellings if clean_alias(s)),
            }
        )
    for row in rows:
        require("|" not in row["name"] + row["official_name"], f"{row['alpha3']}: a | in a name")
    _dedupe_aliases(rows)

    counts = Counter(itu_of.values())
    lldc_developed = [
        f"{r['alpha2']} ({r['name']})" for r in rows if r["lldc"] == "1" and r["developing"] == "0"
    ]
    header = HEADER.format(
        made=made,
        pycountry_version=importlib.metadata.version("pycountry"),
        hdx_version=importlib.metadata.version("hdx-python-country"),
        n_ldc=len(LDC),
        ldc_scheduled=LDC_SCHEDULED,
        n_lldc=len(LLDC),
        n_sids_un=len(SIDS_UN),
        n_sids_other=len(SIDS_OTHER),
        n_itu=len(itu_of),
        lldc_developed=" and ".join(lldc_developed) or "none",
        itu_counts=", ".join(f"{region} {counts[region]}" for region in ITU_MEMBERS),
        itu_others="\n".join(f"  {k} ({r}): {why}" for k, (r, why) in ITU_OTHERS.items()),
        n_un=len(un),
        omitted="\n".join(f"- {k}: {why}" for k, why in OMITTED.items()),
    )
    out = io.StringIO()
    for line in header.splitlines():
        out.write(f"# {line}".rstrip() + "\n")
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _dedupe_aliases(rows: list[dict[str, str]]) -> None:
    """Keep each row's aliases that are new in normal form and name no other country: not
    another row's name or official name (in normal form) or code (ignoring case; the module
    matches codes before names), and not an alias of another row."""
    primary: dict[str, str] = {}
    for row in rows:
        for code in (row["alpha2"], row["alpha3"]):
            primary[code.lower()] = row["alpha3"]
    for row in rows:
        for name in (row["name"], row["official_name"]):
            if name:
                owner = primary.setdefault(normal(name), row["alpha3"])
                require(owner == row["alpha3"], f"{name!r} names {owner} and {row['alpha3']}")
    seen: dict[str, set[str]] = {}
    for row in rows:
        for alias in row["aliases"].split("|"):
            seen.setdefault(normal(alias), set()).add(row["alpha3"])
    for row in rows:
        kept: list[str] = []
        keys: set[str] = set()
        for alias in row["aliases"].split("|"):
            key = normal(alias)
            if normal(re.sub(r"\s*\([^)]*\)$", "", alias)) == normal(row["name"]):
                continue  # "Réunion (France)": the name and its sovereign, nothing new
            if key in keys or key in primary:
                if primary.get(key, row["alpha3"]) != row["alpha3"]:
                    note = f"dropped {alias!r} of {row['alpha3']}: names {primary[key]}"
                    print(note, file=sys.stderr)
                continue
            if len(seen[key]) > 1:
                print(f"dropped {alias!r}: shared by {sorted(seen[key])}", file=sys.stderr)
                continue
            keys.add(key)
            kept.append(alias)
        row["aliases"] = "|".join(kept)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", default=dt.datetime.now(dt.UTC).date().isoformat())
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(list(argv) if argv is not None else None)
    text = build(args.date)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
