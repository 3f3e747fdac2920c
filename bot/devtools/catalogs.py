"""`make i18n`'s last step: the English catalog says every message as written.

English is the source language: after `pybabel update`, its catalog gets each message's own
text as translation (plural forms too), so the test that every catalog is complete holds for
English as for the others, and nobody translates English by hand.

    python -m bot.devtools.catalogs bot/locale/en/LC_MESSAGES/consensus.po
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po


def fill_source(path: Path) -> int:
    """Make every message of the .po at `path` its own translation; returns how many."""
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="en", domain="consensus")
    count = 0
    for message in catalog:
        if not message.id:
            continue  # the header
        message.string = message.id  # a plural message's id is (singular, plural)
        message.flags.discard("fuzzy")
        count += 1
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100, include_previous=False)
    return count


def main(argv: list[str]) -> int:
    """Fill each named English catalog."""
    for name in argv:
        print(f"{name}: {fill_source(Path(name))} messages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
