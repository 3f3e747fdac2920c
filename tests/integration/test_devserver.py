"""The local Synapse harness against a real homeserver, driven with plain urllib."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.synapse import LocalSynapse, RegisteredUser

pytestmark = pytest.mark.real


def call(
    server: LocalSynapse,
    method: str,
    path: str,
    token: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One authenticated JSON request; fails the test with the server's answer on error."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.base_url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result
    except urllib.error.HTTPError as err:
        pytest.fail(f"{method} {path} -> {err.code}: {err.read().decode()}")


def whoami(server: LocalSynapse, user: RegisteredUser) -> str:
    """The user ID the access token belongs to."""
    return str(
        call(server, "GET", "/_matrix/client/v3/account/whoami", user.access_token)["user_id"]
    )


def q(value: str) -> str:
    """Quote a path segment (room and user IDs contain ``!``, ``:`` and ``@``)."""
    return urllib.parse.quote(value, safe="")


def test_two_users_exchange_a_message(synapse: LocalSynapse) -> None:
    alice = synapse.register("alice")
    bob = synapse.register("bob")
    assert alice.user_id == f"@alice:{synapse.server_name}"
    assert alice.device_id

    room_id = call(synapse, "POST", "/_matrix/client/v3/createRoom", alice.access_token, {})[
        "room_id"
    ]
    call(
        synapse,
        "POST",
        f"/_matrix/client/v3/rooms/{q(room_id)}/invite",
        alice.access_token,
        {"user_id": bob.user_id},
    )
    call(synapse, "POST", f"/_matrix/client/v3/join/{q(room_id)}", bob.access_token, {})

    txn = uuid.uuid4().hex
    sent = call(
        synapse,
        "PUT",
        f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/{txn}",
        alice.access_token,
        {"msgtype": "m.text", "body": "hello bob"},
    )

    sync = call(synapse, "GET", "/_matrix/client/v3/sync?timeout=0", bob.access_token)
    events = sync["rooms"]["join"][room_id]["timeline"]["events"]
    messages = [e for e in events if e["type"] == "m.room.message"]
    assert [(e["event_id"], e["sender"], e["content"]["body"]) for e in messages] == [
        (sent["event_id"], alice.user_id, "hello bob")
    ]


def test_register_existing_user_logs_in(synapse: LocalSynapse) -> None:
    first = synapse.register("carol", "s3cret")
    again = synapse.register("carol", "s3cret")
    assert again.user_id == first.user_id
    assert again.access_token != first.access_token
    assert whoami(synapse, again) == first.user_id


def test_exempt_from_rate_limits(synapse: LocalSynapse) -> None:
    dave = synapse.register("dave")
    synapse.exempt_from_rate_limits(dave.user_id)
    synapse.exempt_from_rate_limits(dave.user_id)  # the harness admin is reused
    root = synapse.register("root", admin=True)
    override = call(
        synapse,
        "GET",
        f"/_synapse/admin/v1/users/{q(dave.user_id)}/override_ratelimit",
        root.access_token,
    )
    assert override == {"messages_per_second": 0, "burst_count": 0}


def test_rate_limits_are_relaxed(synapse: LocalSynapse) -> None:
    # Synapse's default rc_message allows a burst of 10, then answers 429.
    frank = synapse.register("frank")
    room_id = call(synapse, "POST", "/_matrix/client/v3/createRoom", frank.access_token, {})[
        "room_id"
    ]
    for i in range(15):
        call(
            synapse,
            "PUT",
            f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/burst-{i}",
            frank.access_token,
            {"msgtype": "m.text", "body": str(i)},
        )


def test_restart_keeps_port_and_users(tmp_path: Path) -> None:
    server = LocalSynapse(tmp_path / "hs")
    assert not server.is_running
    server.stop()  # safe before any start
    try:
        server.start()
        port = server.port
        erin = server.register("erin")
        server.stop()
        assert not server.is_running
        server.stop()  # idempotent

        server.start()
        assert server.is_running
        assert server.port == port
        assert server.base_url == f"http://127.0.0.1:{port}"
        assert whoami(server, erin) == erin.user_id
        assert server.register("erin").user_id == erin.user_id
    finally:
        server.stop()
    print(f"restart took {server.last_start_seconds:.2f} s")
