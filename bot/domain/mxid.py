"""The grammar of Matrix user IDs: the one home of it (config, commands and roster import).

`@localpart:server_name`. The localpart is printable ASCII without `:` (historical IDs allow
more than today's a-z0-9._=-/+); the server is a DNS name (starting and ending with a letter
or digit), an IPv4 address or a bracketed IPv6 literal, with an optional port. At most 255
characters, as the spec says.
"""

from __future__ import annotations

import re
from typing import Final

MAX_USER_ID: Final = 255

_SERVER_NAME: Final = (
    r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?"
)
_USER_ID: Final = re.compile(rf"@[\x21-\x39\x3b-\x7e]+:{_SERVER_NAME}", re.ASCII)
_ALIAS: Final = re.compile(rf"#[^\s:]+:{_SERVER_NAME}")


def is_user_id(text: str) -> bool:
    """Whether `text` is a well-formed Matrix user ID such as `@alice:example.org`."""
    return len(text) <= MAX_USER_ID and _USER_ID.fullmatch(text) is not None


def is_room_alias(text: str) -> bool:
    """Whether `text` is a room alias such as `#main:example.org` (same server grammar)."""
    return _ALIAS.fullmatch(text) is not None


def server_of(user_id: str) -> str:
    """The server part of a Matrix user ID (`@a:example.org` -> `example.org`), or ""."""
    _, sep, server = user_id.partition(":")
    return server if sep else ""
