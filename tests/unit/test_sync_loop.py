"""The sync loop survives whatever a homeserver sends: deep JSON, undecodable events, errors.

The gateway half runs against a tiny HTTP server on the loopback address (no homeserver);
the loop half runs the real `Syncer` and engine over a scripted fake gateway.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import bot.matrix.decode as decode_module
from bot.domain.positions import Position
from bot.matrix.decode import load_json
from bot.matrix.gateway import AuthLost, Gateway, GatewayError
from bot.services.batches import SYNC_TOKEN
from bot.services.syncer import Syncer
from storage.repo import Repository
from tests.unit.test_engine import ALICE, BALLOT, BOB, ROOM, T0, World, wire_syncer


def nested_text(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def timeline_event(event_id: str, sender: str, content: Any, etype: str) -> dict[str, Any]:
    return {
        "type": etype,
        "event_id": event_id,
        "sender": sender,
        "origin_server_ts": T0 + 60_000,
        "content": content,
    }


def vote(event_id: str, sender: str, key: str) -> dict[str, Any]:
    relates = {"rel_type": "m.annotation", "event_id": BALLOT, "key": key}
    return timeline_event(event_id, sender, {"m.relates_to": relates}, "m.reaction")


def deep_sync_text(depth: int = 5000) -> str:
    """A sync response whose first event's content nests `depth` levels, then two votes."""
    deep = timeline_event(
        "$deep", BOB, {"msgtype": "m.text", "body": "hi", "x": "DEEP"}, "m.room.message"
    )
    raw = {
        "next_batch": "s2",
        "rooms": {
            "join": {
                ROOM: {
                    "timeline": {"events": [deep, vote("$v1", ALICE, "👍"), vote("$v2", BOB, "👎")]}
                }
            }
        },
    }
    return json.dumps(raw, ensure_ascii=False).replace('"DEEP"', nested_text(depth))


# ---- the gateway reads any JSON depth -------------------------------------------------------


async def serve(body: bytes, status: int = 200) -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def gateway_for(url: str) -> Gateway:
    gateway = Gateway(url, "@bot:x", "DEV")
    await gateway.connect(password=None, access_token="secret")  # no I/O
    return gateway


async def test_the_gateway_reads_a_sync_response_nested_5000_deep() -> None:
    async for url in serve(deep_sync_text().encode()):
        gateway = await gateway_for(url)
        try:
            raw = await gateway.sync("s1", 0, {})
        finally:
            await gateway.close()
    assert raw["next_batch"] == "s2"
    events = raw["rooms"]["join"][ROOM]["timeline"]["events"]
    assert [e["event_id"] for e in events] == ["$deep", "$v1", "$v2"]


@pytest.mark.parametrize("body", [b"<html>proxy error</html>", b"\xff\xfe", b"[" * 5000])
async def test_an_unreadable_body_is_a_gateway_error_that_is_not_transient(body: bytes) -> None:
    async for url in serve(body):
        gateway = await gateway_for(url)
        try:
            with pytest.raises(GatewayError) as caught:
                await gateway.sync("s1", 0, {})
        finally:
            await gateway.close()
    assert caught.value.unreadable
    assert not caught.value.transient
    assert not caught.value.auth


async def test_a_too_deep_body_parsed_by_nio_is_a_gateway_error() -> None:
    gateway = Gateway("http://127.0.0.1:9", "@bot:x", "DEV")

    async def nio_call() -> None:
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON object")

    with pytest.raises(GatewayError) as caught:
        await gateway._call(nio_call())
    assert caught.value.unreadable
    assert not caught.value.transient


# ---- the loop goes on -----------------------------------------------------------------------


class ScriptedGateway:
    """`sync` answers from a script (an exception is raised); then it waits for ever."""

    crypto = None  # no encryption in these scripts

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls: list[str | None] = []

    async def sync(self, since: str | None, timeout_ms: int, sync_filter: Any) -> Any:
        self.calls.append(since)
        if since is None:  # the pending-invites read at start
            return {"next_batch": "s0"}
        if not self.script:
            await asyncio.Event().wait()
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


async def run_until(syncer: Syncer, done: Callable[[], bool]) -> None:
    task = asyncio.create_task(syncer.run())
    try:
        for _ in range(500):
            if done() or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # re-raise what ended the loop
        assert done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def make_syncer(world: World, gateway: ScriptedGateway) -> tuple[Syncer, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    fake_sleep: Callable[[float], Awaitable[None]] = sleep
    syncer = wire_syncer(world, gateway, sleep=fake_sleep)
    return syncer, slept


async def stored_token(world: World) -> str | None:
    async with world.db.transaction() as tx:
        return await Repository(tx).get_meta(SYNC_TOKEN)


async def test_a_deep_event_an_undecodable_event_and_odd_errors_do_not_stop_the_loop(
    opened: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with opened.db.transaction() as tx:
        await Repository(tx).set_meta(SYNC_TOKEN, "s1")
    real = decode_module._decode_event

    def flaky(room_id: str, event: Any, bot_user_id: str, prefix: str) -> Any:
        if isinstance(event, dict) and event.get("event_id") == "$v2":
            raise RecursionError("a bug no test foresaw")
        return real(room_id, event, bot_user_id, prefix)

    monkeypatch.setattr(decode_module, "_decode_event", flaky)
    gateway = ScriptedGateway(
        [
            RuntimeError("not a GatewayError"),
            RecursionError("from somewhere in the HTTP layer"),
            load_json(deep_sync_text().encode()),
        ]
    )
    syncer, slept = make_syncer(opened, gateway)
    with caplog.at_level(logging.ERROR):
        await run_until(syncer, lambda: syncer.batches >= 1)

    assert syncer.failures == 2
    assert len(slept) == 2  # it backed off, then tried again
    assert gateway.calls[:4] == [None, "s1", "s1", "s1"]  # the same token until it applied
    assert await stored_token(opened) == "s2"  # the token advanced past the bad batch
    assert syncer.undecodable == 1
    positions = await opened.positions()
    assert positions[ALICE] is Position.SUPPORT  # the event after the deep one applied
    assert BOB not in positions  # the undecodable vote was set aside, not guessed at
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    unexpected = [r for r in errors if "sync failed unexpectedly (ref " in r.getMessage()]
    assert len(unexpected) == 2
    assert all(r.exc_info for r in unexpected)  # the traceback is in the log
    assert any("set aside" in r.getMessage() and "$v2" in r.getMessage() for r in errors)


async def test_a_lost_login_still_ends_the_loop(opened: World) -> None:
    async with opened.db.transaction() as tx:
        await Repository(tx).set_meta(SYNC_TOKEN, "s1")
    gateway = ScriptedGateway([GatewayError("gone", errcode="M_UNKNOWN_TOKEN", status=401)])
    syncer, _ = make_syncer(opened, gateway)
    with pytest.raises(AuthLost):
        await syncer.run()
