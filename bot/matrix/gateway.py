"""The only module that imports nio: every call to the homeserver goes through `Gateway`.

nio's own retry loops are switched off (`max_limit_exceeded=0`, `max_timeouts=0`): it would
otherwise sleep and retry for ever on 429s. Every failure becomes a `GatewayError` that says
whether trying again makes sense and how long the server asked us to wait.

Response bodies are parsed by `bot.matrix.decode.load_json`, which survives JSON nested
too deeply for Python's parser (a RecursionError there used to escape the sync loop and
kill it). nio parses the bodies of its own calls; a RecursionError from there becomes a
GatewayError that is not transient (the same body would fail the same way again).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    JoinedRoomsResponse,
    JoinResponse,
    LoginResponse,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomPreset,
    RoomResolveAliasResponse,
    RoomVisibility,
    UploadResponse,
)

from bot.domain.errors import BotError, OperatorError
from bot.matrix.crypto import Crypto, KeyRows, encrypted_file
from bot.matrix.decode import DECRYPTABLE_TYPES, load_json

log = logging.getLogger(__name__)


class GatewayError(BotError):
    """A homeserver call failed; `transient` says whether the same call may work later
    (then it is retried like a `TransientError`), otherwise it is permanent."""

    def __init__(
        self,
        message: str,
        *,
        errcode: str | None = None,
        status: int | None = None,
        retry_after_ms: int | None = None,
        unreadable: bool = False,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.status = status
        self.retry_after_ms = retry_after_ms
        self.unreadable = unreadable  # the body could not be parsed: asking again won't help
        # The decoded error body of a `raw` call: User-Interactive Auth needs its `session`
        # and `flows` from the 401 answer.
        self.body = body if body is not None else {}

    @property
    def auth(self) -> bool:
        """True when the homeserver no longer accepts the bot's login."""
        return self.status == 401 or self.errcode in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN")

    @property
    def transient(self) -> bool:
        """True for outages, timeouts and rate limits: the same call may work later."""
        if self.errcode == "M_LIMIT_EXCEEDED" or self.status == 429:
            return True
        if self.unreadable:
            return False
        return self.status is None or self.status >= 500

    def __str__(self) -> str:
        parts = [super().__str__()]
        if self.errcode:
            parts.append(self.errcode)
        if self.status:
            parts.append(f"HTTP {self.status}")
        return " / ".join(parts)


class AuthLost(OperatorError):
    """The homeserver rejected the bot's access token: stop, nothing is marked failed."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(
            f"the homeserver no longer accepts the bot's login ({error}); if the config has an "
            "access_token, put in a new one; with a password the bot logs in again at start. "
            "Nothing queued was lost: it is sent after the restart"
        )


def _error(resp: ErrorResponse) -> GatewayError:
    """The GatewayError of one of nio's error responses."""
    transport = getattr(resp, "transport_response", None)
    status = int(transport.status) if transport is not None else None
    return GatewayError(
        resp.message or "error",
        errcode=resp.status_code,
        status=status,
        retry_after_ms=resp.retry_after_ms,
    )


def _check(resp: Any, ok: type) -> Any:
    """Return `resp` when it is the success type, else raise GatewayError."""
    if isinstance(resp, ok):
        return resp
    if isinstance(resp, ErrorResponse):
        raise _error(resp)
    transport = getattr(resp, "transport_response", None)
    status = int(transport.status) if transport is not None else None
    raise GatewayError(f"unexpected response {type(resp).__name__}", status=status)


_NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


class Gateway:
    """A thin, typed face of the homeserver. Construction does no I/O; `connect()` logs in."""

    def __init__(
        self,
        homeserver: str,
        user_id: str,
        device_id: str,
        crypto_store: Path | None = None,
        crypto_accepts: frozenset[str] | None = DECRYPTABLE_TYPES,
        crypto_rows: KeyRows | None = None,
    ) -> None:
        self.homeserver = homeserver.rstrip("/")
        self.user_id = user_id
        self.device_id = device_id
        self._client: AsyncClient | None = None
        self.requests_made = 0  # for tests and the outage watchdog
        # End-to-end encryption: the device's Olm machine, kept in `crypto_store` (None: off).
        self.crypto = (
            Crypto(self, crypto_store, crypto_accepts, crypto_rows)
            if crypto_store is not None
            else None
        )

    @property
    def client(self) -> AsyncClient:
        """The nio client; only after `connect()`."""
        if self._client is None:
            raise RuntimeError("gateway not connected")
        return self._client

    async def connect(self, *, password: str | None, access_token: str | None) -> None:
        """Create the client and log in with a password, or adopt an access token."""
        crypto = self.crypto
        had_store = await crypto.prepare() if crypto is not None else False
        # The device's state: the bot's database, or nio's files (simulated members).
        store = {"store": crypto.store_factory, "pickle_key": crypto.pickle_key} if crypto else {}
        config = AsyncClientConfig(
            max_limit_exceeded=0,
            max_timeouts=0,
            request_timeout=60,
            store_sync_tokens=False,
            encryption_enabled=crypto is not None,
            **store,
        )
        client = AsyncClient(
            self.homeserver,
            self.user_id,
            device_id=self.device_id,
            config=config,
            store_path=str(crypto.store_dir) if crypto is not None else "",
        )
        self._client = client
        if access_token:
            # restore_login also opens the device's crypto store when encryption is on.
            client.restore_login(self.user_id, self.device_id, access_token)
        elif not password:
            raise GatewayError("no password or access token configured")
        else:
            resp = await self._call(client.login(password=password, device_name="Consensus Bot"))
            _check(resp, LoginResponse)
            self.device_id = str(client.device_id)  # the server's, when none was configured
        if crypto is not None:
            await crypto.start(had_store=had_store)

    async def close(self) -> None:
        """Close the HTTP session (never logs out: the device and its txn IDs stay valid)."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _call(self, awaitable: Any) -> Any:
        self.requests_made += 1
        try:
            return await awaitable
        except _NETWORK_ERRORS as exc:
            raise GatewayError(f"homeserver unreachable: {type(exc).__name__}") from exc
        except RecursionError as exc:  # nio's json.loads on a too-deeply nested body
            raise GatewayError(
                "the homeserver's response nests too deeply to be read", unreadable=True
            ) from exc

    async def call(self, awaitable: Any) -> Any:
        """Await one of nio's own calls (used by the crypto edge); an error response raises
        GatewayError like every other call."""
        resp = await self._call(awaitable)
        if isinstance(resp, ErrorResponse):
            raise _error(resp)
        return resp

    async def raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - passed through to aiohttp
    ) -> Any:
        """A client-server API call by path; returns the decoded JSON body."""
        client = self.client
        headers = {"Authorization": f"Bearer {client.access_token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        data = None if body is None else json.dumps(body)
        self.requests_made += 1
        try:
            resp = await client.send(method, path, data, headers, timeout=timeout)
            async with resp:
                status = resp.status
                body = await resp.read()
        except _NETWORK_ERRORS as exc:
            raise GatewayError(f"homeserver unreachable: {type(exc).__name__}") from exc
        try:
            payload = load_json(body) if body.strip() else None
        except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError)
            payload = None
        if status >= 400 or not isinstance(payload, dict):
            info = payload if isinstance(payload, dict) else {}
            raise GatewayError(
                str(info.get("error") or f"HTTP {status}"),
                errcode=info.get("errcode"),
                status=status,
                retry_after_ms=info.get("retry_after_ms"),
                unreadable=status < 400,
                body=info,
            )
        return payload

    async def sync(self, since: str | None, timeout_ms: int, sync_filter: dict[str, Any]) -> Any:
        """One `/sync` long poll; returns the raw JSON (decoded by `bot.matrix.decode`)."""
        query: dict[str, str] = {
            "timeout": str(timeout_ms),
            "filter": json.dumps(sync_filter, separators=(",", ":")),
            "set_presence": "offline",
        }
        if since:
            query["since"] = since
        return await self.raw(
            "GET",
            f"/_matrix/client/v3/sync?{urlencode(query)}",
            timeout=timeout_ms / 1000 + 30,
        )

    async def send_message(
        self, room_id: str, content: dict[str, Any], txn_id: str, event_type: str = "m.room.message"
    ) -> str:
        """Send an event with a stable transaction ID; a resend returns the same event ID.

        In an encrypted room the event is encrypted first (reactions too, unlike nio's own
        `room_send`); the transaction ID stays the same, so a resend is still dropped by the
        homeserver even though its ciphertext differs.
        """
        if self.crypto is not None and await self.crypto.is_encrypted(room_id):
            event_type, content = await self.crypto.encrypt(room_id, event_type, content)
        path = (
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/"
            f"{quote(event_type, safe='')}/{quote(txn_id, safe='')}"
        )
        return str((await self.raw("PUT", path, content)).get("event_id", ""))

    async def encrypts(self, room_id: str) -> bool:
        """Whether what the bot sends to `room_id` is end-to-end encrypted."""
        return self.crypto is not None and await self.crypto.is_encrypted(room_id)

    async def upload_encrypted(self, data: bytes, filename: str) -> dict[str, Any]:
        """Encrypt a file, upload the ciphertext and return the event's `file` object."""
        ciphertext, file = encrypted_file(data)
        file["url"] = await self.upload(ciphertext, "application/octet-stream", filename)
        return file

    async def send_reaction(self, room_id: str, event_id: str, key: str, txn_id: str) -> str:
        """Annotate an event (the ✅/❌ acknowledgements, the ballot's seed reactions)."""
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        try:
            return await self.send_message(room_id, content, txn_id, "m.reaction")
        except GatewayError as exc:
            if exc.errcode == "M_DUPLICATE_ANNOTATION":
                return ""  # already there: that is what we wanted
            raise

    async def redact(self, room_id: str, event_id: str, txn_id: str, reason: str = "") -> str:
        """Redact an event (members retracting a reaction, in tests and the demo)."""
        path = (
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/redact/"
            f"{quote(event_id, safe='')}/{quote(txn_id, safe='')}"
        )
        body = {"reason": reason} if reason else {}
        return str((await self.raw("PUT", path, body)).get("event_id", ""))

    async def upload(self, data: bytes, content_type: str, filename: str) -> str:
        """Upload a file to the media repository; returns its mxc:// URI."""
        resp, _ = await self._call(
            self.client.upload(
                io.BytesIO(data), content_type=content_type, filename=filename, filesize=len(data)
            )
        )
        return str(_check(resp, UploadResponse).content_uri)

    async def create_room(
        self,
        *,
        name: str,
        topic: str,
        initial_state: Sequence[dict[str, Any]],
        power_level_override: dict[str, Any],
        invite: Sequence[str] = (),
        is_direct: bool = False,
    ) -> str:
        """Create a private, invite-only room; returns its ID."""
        resp = await self._call(
            self.client.room_create(
                visibility=RoomVisibility.private,
                name=name,
                topic=topic,
                preset=RoomPreset.private_chat,
                invite=list(invite),
                is_direct=is_direct,
                initial_state=list(initial_state),
                power_level_override=power_level_override,
            )
        )
        room_id = str(_check(resp, RoomCreateResponse).room_id)
        if self.crypto is not None and any(
            state.get("type") == "m.room.encryption" for state in initial_state
        ):
            self.crypto.mark_encrypted(room_id)
        return room_id

    async def invite(self, room_id: str, user_id: str) -> None:
        """Invite a user; being already invited or joined counts as done."""
        try:
            await self.raw(
                "POST",
                f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/invite",
                {"user_id": user_id},
            )
        except GatewayError as exc:
            msg = str(exc).lower()
            if exc.errcode == "M_FORBIDDEN" and (
                "already in the room" in msg or "is already" in msg
            ):
                return
            raise
        if self.crypto is not None:
            self.crypto.member_invited(room_id, user_id)

    async def kick(self, room_id: str, user_id: str, reason: str = "") -> None:
        """Remove a user from a room; one who is not in it (any more) counts as done."""
        body = {"user_id": user_id} | ({"reason": reason} if reason else {})
        try:
            await self.raw("POST", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/kick", body)
        except GatewayError as exc:
            msg = str(exc).lower()
            if exc.errcode == "M_FORBIDDEN" and "not in the room" in msg:
                if self.crypto is not None:  # it may have counted as a possible joiner
                    self.crypto.member_left(room_id, user_id)
                return
            raise
        if self.crypto is not None:
            self.crypto.member_left(room_id, user_id)

    async def joined_members(self, room_id: str) -> set[str]:
        """The users joined to a room now (one read, not rate-limited like a send)."""
        page = await self.raw(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/joined_members"
        )
        joined = page.get("joined")
        return {str(user) for user in joined} if isinstance(joined, dict) else set()

    async def join(self, room: str) -> str:
        """Join a room by ID or alias; returns the room ID."""
        resp = await self._call(self.client.join(room))
        return str(_check(resp, JoinResponse).room_id)

    async def leave(self, room_id: str) -> None:
        """Leave (or reject the invite to) a room."""
        await self.raw("POST", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/leave", {})

    async def resolve_alias(self, alias: str) -> str:
        """The room ID behind an alias."""
        resp = await self._call(self.client.room_resolve_alias(alias))
        return str(_check(resp, RoomResolveAliasResponse).room_id)

    async def joined_rooms(self) -> list[str]:
        """Rooms the bot is joined to."""
        resp = await self._call(self.client.joined_rooms())
        return list(_check(resp, JoinedRoomsResponse).rooms)

    async def state_event(self, room_id: str, event_type: str, state_key: str = "") -> Any:
        """A state event's content, or None when the room has none."""
        resp = await self._call(self.client.room_get_state_event(room_id, event_type, state_key))
        if isinstance(resp, RoomGetStateEventResponse):
            return resp.content
        if isinstance(resp, ErrorResponse) and resp.status_code == "M_NOT_FOUND":
            return None
        _check(resp, RoomGetStateEventResponse)
        return None

    async def put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> None:
        """Set a state event."""
        path = (
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/"
            f"{quote(event_type, safe='')}/{quote(state_key, safe='')}"
        )
        await self.raw("PUT", path, content)

    async def reactions(self, room_id: str, event_id: str) -> list[dict[str, Any]]:
        """Every live `m.reaction` on an event, raw, through the relations endpoint.

        The server leaves redacted reactions out, so this is the ballot as members see it.
        """
        # Encrypted reactions are m.room.encrypted on the server: ask for every annotation.
        event_type = None if self.crypto is not None else "m.reaction"
        return await self.relations(room_id, event_id, "m.annotation", event_type)

    async def redaction_of(self, room_id: str, event_id: str) -> tuple[str, str, int] | None:
        """(redaction event ID, sender, ts) when the event was redacted, else None."""
        try:
            event = await self.raw(
                "GET",
                f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/event/"
                f"{quote(event_id, safe='')}",
            )
        except GatewayError as exc:
            if exc.transient:
                raise
            return None
        because = event.get("unsigned", {}).get("redacted_because")
        if not isinstance(because, dict) or not isinstance(because.get("event_id"), str):
            return None
        ts = because.get("origin_server_ts")
        return (
            because["event_id"],
            str(because.get("sender", "")),
            ts if isinstance(ts, int) else 0,
        )

    async def relations(
        self, room_id: str, event_id: str, rel_type: str, event_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Every live event relating to `event_id` with `rel_type` (and type), raw."""
        events: list[dict[str, Any]] = []
        token: str | None = None
        base = (
            f"/_matrix/client/v1/rooms/{quote(room_id, safe='')}/relations/"
            f"{quote(event_id, safe='')}/{quote(rel_type, safe='')}"
        ) + (f"/{quote(event_type, safe='')}" if event_type else "")
        for _ in range(1_000):  # bounded: at most 100k reactions
            query = {"limit": "100"} | ({"from": token} if token else {})
            page = await self.raw("GET", f"{base}?{urlencode(query)}")
            chunk = page.get("chunk")
            events.extend(e for e in self._readable(room_id, chunk) if isinstance(e, dict))
            token = page.get("next_batch") if isinstance(page.get("next_batch"), str) else None
            if not token:
                break
        return events

    async def messages(
        self, room_id: str, from_token: str, to_token: str | None = None, limit: int = 100
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a room's timeline, backwards from `from_token` (newest first),
        stopping at `to_token` (e.g. the sync token the gap started at).

        Returns the events and the token for the next (older) page, None at the end.
        """
        query = {"dir": "b", "limit": str(limit), "from": from_token}
        if to_token:
            query["to"] = to_token
        page = await self.raw(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages?{urlencode(query)}"
        )
        end = page.get("end")
        events = [e for e in self._readable(room_id, page.get("chunk")) if isinstance(e, dict)]
        return events, (end if isinstance(end, str) and events else None)

    async def recent_events(self, room_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """The room's latest events, newest first (one page of /messages without a token)."""
        query = {"dir": "b", "limit": str(limit)}
        page = await self.raw(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages?{urlencode(query)}"
        )
        return [e for e in self._readable(room_id, page.get("chunk")) if isinstance(e, dict)]

    def _readable(self, room_id: str, chunk: Any) -> list[Any]:
        """A page of events with the encrypted ones the bot can read decrypted."""
        events = chunk if isinstance(chunk, list) else []
        return self.crypto.plain_events(room_id, events) if self.crypto is not None else events

    async def default_room_version(self) -> str:
        """The room version this server creates by default."""
        caps = await self.raw("GET", "/_matrix/client/v3/capabilities")
        version = caps.get("capabilities", {}).get("m.room_versions", {}).get("default", "10")
        return str(version)
