"""Cross-signing of the bot's device against a real Synapse, checked as another user sees it.

The bot runs nio with an Olm store (SQLite) and uploads its device keys with nio's
`keys_upload()`, as in production; `ensure_cross_signed` then signs the device. Another
user's client reads the bot's keys from `/keys/query`, and the signatures are verified with
matrix-org's `signedjson` (PyNaCl, its own canonical JSON), independent of the code under test.
"""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from unpaddedbase64 import decode_base64

from bot.devtools.synapse import LocalSynapse, RegisteredUser
from bot.matrix.crosssign import (
    RESET_OPTION,
    CrossSigningError,
    Outcome,
    ensure_cross_signed,
)
from bot.matrix.gateway import Gateway

pytestmark = pytest.mark.real


@asynccontextmanager
async def bot_client(
    synapse: LocalSynapse,
    user: RegisteredUser,
    store: Path,
    *,
    new_device: bool = False,
) -> AsyncIterator[Gateway]:
    """The bot's nio client with an Olm store in `store`, device keys uploaded.

    By default it adopts the registered session (access token and device); `new_device`
    logs in with the password instead, which makes a new device.
    """
    gateway = Gateway(
        synapse.base_url,
        user.user_id,
        "" if new_device else user.device_id,
        crypto_store=store,
    )
    # Connecting with a crypto store loads (or creates) the Olm account and uploads its keys.
    if new_device:
        await gateway.connect(password=user.password, access_token=None)
    else:
        await gateway.connect(password=None, access_token=user.access_token)
    try:
        yield gateway
    finally:
        await gateway.close()


@asynccontextmanager
async def plain_client(synapse: LocalSynapse, user: RegisteredUser) -> AsyncIterator[Gateway]:
    """Another user's client (a real nio client, no encryption needed to query keys)."""
    gateway = Gateway(synapse.base_url, user.user_id, user.device_id)
    await gateway.connect(password=None, access_token=user.access_token)
    try:
        yield gateway
    finally:
        await gateway.close()


async def query(observer: Gateway, user_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = await observer.raw(
        "POST", "/_matrix/client/v3/keys/query", {"device_keys": {user_id: []}}
    )
    return answer


def only_key(key_obj: dict[str, Any]) -> str:
    ((key_id, public),) = key_obj["keys"].items()
    assert key_id == f"ed25519:{public}"
    return str(public)


def signed_by(obj: dict[str, Any], user_id: str, key_id: str, public: str) -> bool:
    """Verify with signedjson: an implementation independent of bot.matrix.crosssign."""
    verify_key = decode_verify_key_bytes(key_id, decode_base64(public))
    try:
        verify_signed_json(obj, user_id, verify_key)
    except SignatureVerifyException:
        return False
    return True


def assert_device_cross_signed(
    answer: dict[str, Any], user_id: str, device_id: str, device_ed25519: str, master: str
) -> None:
    """The chain another user's client checks: master → self-signing key → device."""
    master_obj = answer["master_keys"][user_id]
    ssk_obj = answer["self_signing_keys"][user_id]
    device = answer["device_keys"][user_id][device_id]
    assert only_key(master_obj) == master
    assert master_obj["usage"] == ["master"]
    ssk = only_key(ssk_obj)
    assert ssk_obj["usage"] == ["self_signing"]
    assert signed_by(ssk_obj, user_id, f"ed25519:{master}", master)
    assert device["keys"][f"ed25519:{device_id}"] == device_ed25519
    assert signed_by(device, user_id, f"ed25519:{ssk}", ssk)
    # A signature by another key fails: the verifier really checks.
    assert not signed_by(device, user_id, f"ed25519:{ssk}", master)


def olm_ed25519(gateway: Gateway) -> str:
    return str(gateway.client.olm.account.identity_keys["ed25519"])


def set_aside(directory: Path, name: str) -> list[Path]:
    return sorted(directory.glob(f"{name}.replaced-*"))


def counting(gateway: Gateway) -> Callable[[], int]:
    start = gateway.requests_made
    return lambda: gateway.requests_made - start


async def test_bot_device_is_cross_signed_as_another_user_sees_it(
    synapse: LocalSynapse, tmp_path: Path
) -> None:
    bot_user = synapse.register("xs1-bot")
    alice = synapse.register("xs1-alice")
    key_file = tmp_path / "data" / "cross-signing.json"
    async with (
        bot_client(synapse, bot_user, tmp_path / "store") as bot,
        plain_client(synapse, alice) as observer,
    ):
        result = await ensure_cross_signed(bot, password=bot_user.password, key_file=key_file)
        assert result.outcome is Outcome.CREATED
        assert result.device_id == bot_user.device_id
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

        seen = await query(observer, bot_user.user_id)
        assert_device_cross_signed(
            seen, bot_user.user_id, bot_user.device_id, olm_ed25519(bot), result.master_key
        )
        assert only_key(seen["self_signing_keys"][bot_user.user_id]) == result.self_signing_key
        # The master key carries the device's signature too, as Element's does. Synapse
        # shows a user's signatures on cross-signing keys only to that user, so the bot looks.
        own = await query(bot, bot_user.user_id)
        assert signed_by(
            own["master_keys"][bot_user.user_id],
            bot_user.user_id,
            f"ed25519:{bot_user.device_id}",
            olm_ed25519(bot),
        )
        # The user-signing key is shown only to its owner; it is signed by the master key.
        usk_obj = own["user_signing_keys"][bot_user.user_id]
        assert usk_obj["usage"] == ["user_signing"]
        assert signed_by(
            usk_obj, bot_user.user_id, f"ed25519:{result.master_key}", result.master_key
        )

        # A second call finds everything in place: one /keys/query, no upload.
        file_before = key_file.read_bytes()
        requests = counting(bot)
        again = await ensure_cross_signed(bot, password=bot_user.password, key_file=key_file)
        assert again.outcome is Outcome.UNCHANGED
        assert again.master_key == result.master_key
        assert requests() == 1
        assert key_file.read_bytes() == file_before


async def test_restart_keeps_the_identity_and_a_new_device_gets_signed(
    synapse: LocalSynapse, tmp_path: Path
) -> None:
    bot_user = synapse.register("xs2-bot")
    alice = synapse.register("xs2-alice")
    key_file = tmp_path / "cross-signing.json"
    async with bot_client(synapse, bot_user, tmp_path / "store") as bot:
        first = await ensure_cross_signed(bot, password=None, key_file=key_file)
        device_key = olm_ed25519(bot)
    assert first.outcome is Outcome.CREATED  # Synapse asks no UIA for a first identity

    # Restart: same store, same device, same key file.
    async with bot_client(synapse, bot_user, tmp_path / "store") as bot:
        assert olm_ed25519(bot) == device_key  # the Olm store kept the device's keys
        requests = counting(bot)
        restarted = await ensure_cross_signed(bot, password=None, key_file=key_file)
        assert restarted.outcome is Outcome.UNCHANGED
        assert restarted.master_key == first.master_key
        assert requests() == 1

    # A new device (fresh login and store) with the kept key file: signed, same identity.
    async with (
        bot_client(synapse, bot_user, tmp_path / "store2", new_device=True) as bot,
        plain_client(synapse, alice) as observer,
    ):
        assert bot.device_id != bot_user.device_id
        signed = await ensure_cross_signed(bot, password=None, key_file=key_file)
        assert signed.outcome is Outcome.SIGNED
        assert signed.master_key == first.master_key
        seen = await query(observer, bot_user.user_id)
        for device_id, ed25519 in ((bot_user.device_id, device_key), (bot.device_id, None)):
            assert_device_cross_signed(
                seen,
                bot_user.user_id,
                device_id,
                ed25519 or olm_ed25519(bot),
                first.master_key,
            )


async def test_missing_key_file_is_a_clear_error_and_reset_is_deliberate(
    synapse: LocalSynapse, tmp_path: Path
) -> None:
    bot_user = synapse.register("xs3-bot")
    alice = synapse.register("xs3-alice")
    kept = tmp_path / "kept.json"
    lost = tmp_path / "lost.json"
    async with (
        bot_client(synapse, bot_user, tmp_path / "store") as bot,
        plain_client(synapse, alice) as observer,
    ):
        original = await ensure_cross_signed(bot, password=None, key_file=kept)

        # The server has an identity, the key file is missing: refuse, touch nothing.
        requests = counting(bot)
        with pytest.raises(CrossSigningError) as missing:
            await ensure_cross_signed(bot, password=bot_user.password, key_file=lost)
        message = str(missing.value)
        assert str(lost) in message
        assert "restore it from your backup" in message
        assert RESET_OPTION in message
        assert requests() == 1  # only the query
        assert not lost.exists()
        seen = await query(observer, bot_user.user_id)
        assert only_key(seen["master_keys"][bot_user.user_id]) == original.master_key

        # Replacing an identity needs the password (User-Interactive Auth).
        with pytest.raises(CrossSigningError, match="asks for the bot's password"):
            await ensure_cross_signed(bot, password=None, key_file=lost, reset=True)
        # The new keys were saved before the upload was tried; the server kept the old ones.
        assert stat.S_IMODE(lost.stat().st_mode) == 0o600
        seen = await query(observer, bot_user.user_id)
        assert only_key(seen["master_keys"][bot_user.user_id]) == original.master_key
        with pytest.raises(CrossSigningError, match="refused the bot's password"):
            await ensure_cross_signed(bot, password="wrong", key_file=lost, reset=True)
        replaced = await ensure_cross_signed(
            bot, password=bot_user.password, key_file=lost, reset=True
        )
        assert replaced.outcome is Outcome.CREATED
        assert replaced.master_key != original.master_key
        # Each failed attempt's never-uploaded file was set aside, not deleted.
        assert len(set_aside(tmp_path, "lost.json")) == 2
        seen = await query(observer, bot_user.user_id)
        assert_device_cross_signed(
            seen, bot_user.user_id, bot_user.device_id, olm_ed25519(bot), replaced.master_key
        )

        # The old file no longer matches the server: refused, naming the reset.
        requests = counting(bot)
        with pytest.raises(CrossSigningError, match="is not the one in the key file") as stale:
            await ensure_cross_signed(bot, password=bot_user.password, key_file=kept)
        assert RESET_OPTION in str(stale.value)
        assert requests() == 1
        # With reset, the stale file is set aside and a new identity replaces the server's.
        old_file = kept.read_bytes()
        fresh = await ensure_cross_signed(
            bot, password=bot_user.password, key_file=kept, reset=True
        )
        assert fresh.outcome is Outcome.CREATED
        assert fresh.master_key not in (original.master_key, replaced.master_key)
        (aside,) = set_aside(tmp_path, "kept.json")
        assert aside.read_bytes() == old_file
        seen = await query(observer, bot_user.user_id)
        assert_device_cross_signed(
            seen, bot_user.user_id, bot_user.device_id, olm_ed25519(bot), fresh.master_key
        )
        # The reset flag left on changes nothing once file and server agree.
        again = await ensure_cross_signed(bot, password=None, key_file=kept, reset=True)
        assert again.outcome is Outcome.UNCHANGED
