"""PostgreSQL connection URLs (DSNs): checked, shown without their secrets, described.

Pure string work on the standard library (no connection, no asyncpg), so the configuration
can refuse a DSN asyncpg would choke on and `check-config` can print one. The reading follows
asyncpg's: the user information ends at the first `@` of the network location, hosts are a
comma-separated list, each `HOST[:PORT]` or `[IPv6][:PORT]` or a `/socket/dir`.

No message of `DsnError` quotes any part of the DSN: when a `/`, `?`, `#` or `@` in a
password is not percent-encoded, the parts are split in the wrong places, and the "port" or
"host" a message would quote may be a piece of the password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

from bot.domain.errors import OperatorError

SCHEMES: Final = ("postgresql://", "postgres://")
MASK: Final = "********"
# Query parameters that are, or lead to, a password (passfile names the file holding it).
SECRET_PARAMS: Final = frozenset({"password", "passfile", "sslpassword"})
_IPV6: Final = re.compile(r"\[[^\]]+\](?::(?P<port>[^:]*))?")
_ENCODE_HINT: Final = (
    "; a '/', '?', '#', '@' or ':' in the user name or password must be percent-encoded "
    "(%2F, %3F, %23, %40, %3A)"
)


class DsnError(OperatorError, ValueError):
    """The DSN cannot be used; the message quotes no part of it."""


@dataclass(frozen=True)
class Dsn:
    """The parts of a DSN a message may show: never the password."""

    user: str
    hosts: tuple[tuple[str, int | None], ...]  # (host or socket directory, port or default)
    database: str


def _port(text: str, hint: str) -> int | None:
    """A port: empty (the default) or a whole number from 1 to 65535."""
    if not text:
        return None
    text = unquote(text)
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise DsnError(f"has a port that is not a whole number from 1 to 65535{hint}")
    return int(text)


def _hosts(hostspec: str, hint: str) -> tuple[tuple[str, int | None], ...]:
    if not hostspec:
        return ()
    hosts: list[tuple[str, int | None]] = []
    for spec in hostspec.split(","):
        if not spec:
            raise DsnError(f"has an empty host in its list of hosts{hint}")
        if spec.startswith("/"):
            hosts.append((unquote(spec), None))
        elif spec.startswith("["):
            match = _IPV6.fullmatch(spec)
            if match is None:
                raise DsnError(f"has an IPv6 host that is not written [ADDRESS]:PORT{hint}")
            address = spec[1 : spec.index("]")]
            hosts.append((unquote(address), _port(match["port"] or "", hint)))
        else:
            host, _, port = spec.partition(":")
            if not host:
                raise DsnError(f"has a port without a host{hint}")
            hosts.append((unquote(host), _port(port, hint)))
    return tuple(hosts)


def parse_dsn(text: str) -> Dsn:
    """Check a DSN the way asyncpg will read it; raise DsnError saying what is wrong."""
    text = text.strip()
    if not text.startswith(SCHEMES):
        raise DsnError(
            "must be a PostgreSQL URL such as 'postgresql://bot@db.example.org:5432/consensus'"
        )
    try:
        parts = urlsplit(text)
    except ValueError:
        raise DsnError(f"is not a valid URL{_ENCODE_HINT}") from None
    auth, at, hostspec = parts.netloc.partition("@")
    if not at:
        auth, hostspec = "", parts.netloc
    # With user information, a bad port or host may be a piece of a password whose '@',
    # '/', '?' or '#' was not encoded: say so.
    hint = _ENCODE_HINT if "@" in text else ""
    if "@" in hostspec:
        raise DsnError(f"has more than one '@' before its database name{_ENCODE_HINT}")
    # A password's unencoded '/', '?' or '#' leaves its '@' behind the host part, where no
    # mask would find the rest of the password: refuse rather than risk showing it.
    if "#" in text:
        raise DsnError(f"has a '#'{_ENCODE_HINT}")
    if "@" in parts.path or "@" in parts.query:
        raise DsnError(f"has an '@' after the host (write %40 in a database name){_ENCODE_HINT}")
    hosts = _hosts(hostspec, hint)
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise DsnError(f"has a query string that is not KEY=VALUE&…{hint}") from None
    for key, value in query:
        if key == "port":
            for one in value.split(","):
                _port(one, hint)
    user = unquote(auth.partition(":")[0])
    return Dsn(user=user, hosts=hosts, database=unquote(parts.path.lstrip("/")))


def mask_dsn(text: str) -> str:
    """The DSN with every password form masked: the password of the user information and
    the `password`, `passfile` and `sslpassword` query parameters. Host, port, database and
    the other parameters stay readable. A DSN that `parse_dsn` refuses is not shown at all."""
    text = text.strip()
    try:
        parse_dsn(text)
    except DsnError:
        return "(not shown: not a valid DSN)"
    parts = urlsplit(text)
    auth, at, hostspec = parts.netloc.partition("@")
    if at:
        user, colon, _ = auth.partition(":")
        netloc = f"{user}:{MASK}@{hostspec}" if colon else parts.netloc
    else:
        netloc = parts.netloc
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        key, equals, _ = pair.partition("=")
        secret = equals and unquote_plus(key) in SECRET_PARAMS
        pairs.append(f"{key}={MASK}" if secret else pair)
    # Put together by hand: urlunsplit would drop the empty host of `postgresql:///db`.
    query = f"?{'&'.join(pairs)}" if pairs else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def describe_dsn(text: str) -> str:
    """`PostgreSQL database NAME on HOST:PORT` for messages: never the password."""
    try:
        dsn = parse_dsn(text)
    except DsnError:
        return "PostgreSQL database of storage.dsn"
    name = dsn.database or "(default database)"
    shown = [f"[{h}]" if ":" in h and not h.startswith("/") else h for h, _ in dsn.hosts]
    ports = [f":{p}" if p else "" for _, p in dsn.hosts]
    hosts = ", ".join(h + p for h, p in zip(shown, ports, strict=True)) or "localhost"
    return f"PostgreSQL database {name} on {hosts}"
