"""The pure parts of cross-signing: canonical JSON, signatures, upload bodies, the plan, the
key file. Where a reference exists it is an independent one: matrix-org's `canonicaljson` and
`signedjson` (PyNaCl), and RFC 8032's Ed25519 test vector.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import canonicaljson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from unpaddedbase64 import decode_base64

from bot.matrix.crosssign import (
    RESET_OPTION,
    CrossSigningError,
    CrossSigningKeys,
    LocalDevice,
    Plan,
    ServerKeys,
    SigningKey,
    b64_decode,
    b64_encode,
    canonical_json,
    check_device_keys,
    device_signing_upload_body,
    key_object,
    key_public,
    load_key_file,
    password_auth,
    plan_identity,
    save_key_file,
    set_key_file_aside,
    sign_json,
    signable_bytes,
    signatures_upload_body,
    verify_json,
)

USER = "@bot:example.org"
DEVICE = "BOTDEVICE"
SAFE = 2**53 - 1

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-SAFE, SAFE) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)


def signedjson_verifies(obj: dict[str, Any], user_id: str, key_id: str, public: str) -> bool:
    verify_key = decode_verify_key_bytes(key_id, decode_base64(public))
    try:
        verify_signed_json(obj, user_id, verify_key)
    except SignatureVerifyException:
        return False
    return True


# ---------------------------------------------------------------- canonical JSON, base64


@given(json_values)
def test_canonical_json_matches_matrix_orgs_canonicaljson(value: Any) -> None:
    assert canonical_json(value) == canonicaljson.encode_canonical_json(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [  # the examples of the spec's appendix "Canonical JSON"
        ({}, b"{}"),
        ({"one": 1, "two": "Two"}, b'{"one":1,"two":"Two"}'),
        ({"b": "2", "a": "1"}, b'{"a":"1","b":"2"}'),
        ({"a": "日本語"}, '{"a":"日本語"}'.encode()),
        ({"本": 2, "日": 1}, '{"日":1,"本":2}'.encode()),
        ({"a": "\u65e5"}, '{"a":"日"}'.encode()),
        ({"a": None}, b'{"a":null}'),
        ({"a": "\x01\n"}, b'{"a":"\\u0001\\n"}'),
    ],
)
def test_canonical_json_spec_examples(value: Any, expected: bytes) -> None:
    assert canonical_json(value) == expected


@pytest.mark.parametrize("bad", [1.5, 2**53, -(2**53), {1: "x"}, {"a": {1, 2}}, float("nan")])
def test_canonical_json_refuses_what_it_cannot_encode(bad: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        canonical_json(bad)


@given(st.binary(max_size=80))
def test_base64_is_unpadded_and_round_trips(data: bytes) -> None:
    text = b64_encode(data)
    assert "=" not in text
    assert b64_decode(text) == data
    assert b64_decode(text + "=" * (-len(text) % 4)) == data  # padded input is accepted


def test_base64_rejects_junk() -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        b64_decode("not base64!")


# ---------------------------------------------------------------- keys and signatures


def test_ed25519_matches_rfc8032_test_vector_1() -> None:
    key = SigningKey(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    assert b64_decode(key.public).hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert b64_decode(key.sign_bytes(b"")).hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert key.key_id == f"ed25519:{key.public}"
    assert key.seed.hex() not in repr(key)


def test_a_seed_has_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SigningKey(b"short")


@example({"signatures": {"": None}}, "@a:x")  # another party's entry that is no mapping
@given(json_objects, st.text(min_size=1))
def test_signatures_verify_here_and_with_signedjson(obj: dict[str, Any], user_id: str) -> None:
    key = SigningKey(bytes(range(32)))
    signed = sign_json(obj, user_id, key.key_id, key.sign_bytes)
    assert verify_json(signed, user_id, key.public)
    assert signedjson_verifies(signed, user_id, key.key_id, key.public)
    # `unsigned` is left out of what is signed and of the copy; other signatures are kept.
    again = sign_json(
        {**signed, "unsigned": {"x": 1}},
        "@other:x",
        "ed25519:DEV",
        SigningKey.generate().sign_bytes,
    )
    assert "unsigned" not in again
    assert verify_json(again, user_id, key.public)


@given(json_objects, st.text(min_size=1), json_values)
def test_a_changed_object_no_longer_verifies(obj: dict[str, Any], field: str, value: Any) -> None:
    key = SigningKey(bytes(range(32)))
    signed = sign_json(obj, USER, key.key_id, key.sign_bytes)
    if field in ("signatures", "unsigned") or obj.get(field, object()) == value:
        return
    tampered = {**signed, field: value}
    assert not verify_json(tampered, USER, key.public)
    assert not verify_json(signed, USER, SigningKey.generate().public)  # another key
    assert not verify_json(signed, "@someone:else", key.public)  # another signer


def test_verify_json_survives_junk() -> None:
    key = SigningKey.generate()
    assert not verify_json({}, USER, key.public)
    assert not verify_json({"signatures": "x"}, USER, key.public)
    assert not verify_json({"signatures": {USER: {key.key_id: "!!"}}}, USER, key.public)
    assert not verify_json({"signatures": {USER: {key.key_id: "AAAA"}}}, USER, "bad key")
    unencodable = {"f": 1.5, "signatures": {USER: {key.key_id: "AAAA"}}}
    assert not verify_json(unencodable, USER, key.public)


@pytest.mark.parametrize(
    "obj",
    [
        None,
        {},
        {"keys": {}},
        {"keys": {"ed25519:a": "a", "ed25519:b": "b"}},
        {"keys": {"ed25519:a": "b"}},
        {"keys": {"curve25519:a": "a"}},
        {"keys": ["a"]},
    ],
)
def test_key_public_is_none_for_anything_but_one_ed25519_key(obj: Any) -> None:
    assert key_public(obj) is None


def test_device_signing_upload_body_has_the_three_keys_signed_by_master() -> None:
    keys = CrossSigningKeys.generate()
    body = device_signing_upload_body(USER, keys)
    assert set(body) == {"master_key", "self_signing_key", "user_signing_key"}
    assert body["master_key"] == key_object(USER, "master", keys.master)
    for field, usage, key in (
        ("self_signing_key", "self_signing", keys.self_signing),
        ("user_signing_key", "user_signing", keys.user_signing),
    ):
        obj = body[field]
        assert obj["usage"] == [usage]
        assert obj["user_id"] == USER
        assert key_public(obj) == key.public
        assert signedjson_verifies(obj, USER, keys.master.key_id, keys.master.public)
    json.dumps(body)  # plain JSON


def test_password_auth_answers_the_password_flow_with_the_session() -> None:
    challenge = {
        "session": "S",
        "flows": [{"stages": ["m.login.sso"]}, {"stages": ["m.login.password"]}],
    }
    assert password_auth(challenge, USER, "pw") == {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": USER},
        "password": "pw",
        "session": "S",
    }


@pytest.mark.parametrize(
    "flows",
    [
        [{"stages": ["m.login.sso"]}],
        [{"stages": ["m.login.password", "m.login.email.identity"]}],
        [],
        "junk",
    ],
)
def test_password_auth_refuses_flows_the_bot_cannot_complete(flows: Any) -> None:
    with pytest.raises(CrossSigningError, match="cannot give"):
        password_auth({"session": "S", "flows": flows}, USER, "pw")


# ---------------------------------------------------------------- the device


def local_device(key: SigningKey, device_id: str = DEVICE) -> LocalDevice:
    return LocalDevice(device_id, key.public, key.sign_bytes)


def device_keys(device: LocalDevice, user_id: str = USER) -> dict[str, Any]:
    """Device keys as nio uploads them and the server returns them."""
    obj = {
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "device_id": device.device_id,
        "user_id": user_id,
        "keys": {
            f"curve25519:{device.device_id}": "c" * 43,
            f"ed25519:{device.device_id}": device.ed25519,
        },
    }
    signed = sign_json(obj, user_id, device.key_id, device.sign)
    signed["unsigned"] = {"device_display_name": "Consensus Bot"}
    return signed


def test_check_device_keys_accepts_the_olm_accounts_own_keys() -> None:
    device = local_device(SigningKey.generate())
    check_device_keys(device_keys(device), USER, device)


def test_check_device_keys_refuses_missing_or_foreign_keys() -> None:
    device = local_device(SigningKey.generate())
    with pytest.raises(CrossSigningError, match="no device keys"):
        check_device_keys(None, USER, device)
    other = local_device(SigningKey.generate())
    with pytest.raises(CrossSigningError, match="not the ones in the bot's Olm store"):
        check_device_keys(device_keys(other), USER, device)
    forged = device_keys(device)
    forged["signatures"] = device_keys(other)["signatures"]  # right key, wrong signature
    with pytest.raises(CrossSigningError, match="Olm store"):
        check_device_keys(forged, USER, device)
    with pytest.raises(CrossSigningError, match="Olm store"):
        check_device_keys(device_keys(device, "@else:x"), USER, device)


def test_signatures_upload_body_signs_device_and_master_once() -> None:
    keys = CrossSigningKeys.generate()
    device = local_device(SigningKey.generate())
    served = device_keys(device)
    server = ServerKeys(key_object(USER, "master", keys.master), None, None, served)
    body = signatures_upload_body(USER, keys, server, device)
    assert set(body) == {USER}
    signed_device = body[USER][DEVICE]
    assert "unsigned" not in signed_device
    ssk = keys.self_signing
    assert signedjson_verifies(signed_device, USER, ssk.key_id, ssk.public)
    assert signedjson_verifies(signed_device, USER, device.key_id, device.ed25519)  # kept
    signed_master = body[USER][keys.master.public]
    assert signedjson_verifies(signed_master, USER, device.key_id, device.ed25519)
    # Once the server has both signatures there is nothing left to upload.
    done = ServerKeys(signed_master, None, None, signed_device)
    assert signatures_upload_body(USER, keys, done, device) == {}


def test_server_keys_pick_the_bots_own_keys() -> None:
    keys = CrossSigningKeys.generate()
    device = local_device(SigningKey.generate())
    answer = {
        "device_keys": {USER: {DEVICE: device_keys(device)}, "@x:y": {"Z": {}}},
        "master_keys": {USER: key_object(USER, "master", keys.master)},
        "self_signing_keys": {USER: key_object(USER, "self_signing", keys.self_signing)},
        "failures": {},
    }
    server = ServerKeys.from_query(answer, USER, DEVICE)
    assert server.publics() == (keys.master.public, keys.self_signing.public, None)
    assert server.device == device_keys(device)
    assert ServerKeys.from_query({}, USER, DEVICE) == ServerKeys(None, None, None, None)


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_server_keys_survive_any_answer(answer: dict[str, Any]) -> None:
    ServerKeys.from_query(answer, USER, DEVICE).publics()


# ---------------------------------------------------------------- the plan


def server_with(keys: CrossSigningKeys | None, *, usk: bool = True) -> ServerKeys:
    if keys is None:
        return ServerKeys(None, None, None, None)
    return ServerKeys(
        key_object(USER, "master", keys.master),
        key_object(USER, "self_signing", keys.self_signing),
        key_object(USER, "user_signing", keys.user_signing) if usk else None,
        None,
    )


KEY_FILE = Path("/data/cross-signing.json")


def plan(stored: CrossSigningKeys | None, server: ServerKeys, reset: bool = False) -> Plan:
    return plan_identity(
        stored, server, user_id=USER, where=f"the key file {KEY_FILE}", reset=reset
    )


@pytest.mark.parametrize("reset", [False, True])
def test_plan_covers_every_case(reset: bool) -> None:
    mine, theirs = CrossSigningKeys.generate(), CrossSigningKeys.generate()
    # Nothing anywhere: create. Our file, empty server: upload it. Both agree: nothing.
    assert plan(None, server_with(None), reset) == Plan(create=True, upload=True)
    assert plan(mine, server_with(None), reset) == Plan(upload=True)
    assert plan(mine, server_with(mine), reset) == Plan()
    # Our master with a part missing on the server: completing it replaces nothing.
    assert plan(mine, server_with(mine, usk=False), reset) == Plan(upload=True)
    if reset:
        assert plan(None, server_with(theirs), reset) == Plan(
            create=True, upload=True, replacing=True
        )
        assert plan(mine, server_with(theirs), reset) == Plan(
            set_aside=True, create=True, upload=True, replacing=True
        )


def test_plan_refuses_to_replace_without_reset() -> None:
    mine, theirs = CrossSigningKeys.generate(), CrossSigningKeys.generate()
    with pytest.raises(CrossSigningError) as missing:
        plan(None, server_with(theirs))
    message = str(missing.value)
    for part in (str(KEY_FILE), "restore it from your backup", RESET_OPTION, USER):
        assert part in message
    assert theirs.master.public in message
    with pytest.raises(CrossSigningError) as other:
        plan(mine, server_with(theirs))
    assert RESET_OPTION in str(other.value)
    assert "is not the one in the key file" in str(other.value)
    # Same master, a different self-signing key: not ours either.
    mixed = CrossSigningKeys(mine.master, theirs.self_signing, mine.user_signing)
    with pytest.raises(CrossSigningError, match="is not the one"):
        plan(mine, server_with(mixed))


# ---------------------------------------------------------------- the key file


def test_key_file_round_trips_with_mode_0600(tmp_path: Path) -> None:
    keys = CrossSigningKeys.generate()
    path = tmp_path / "sub" / "cross-signing.json"
    save_key_file(path, USER, keys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_file(path, USER) == keys
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    record = json.loads(path.read_text())
    assert record["master"]["public"] == keys.master.public


def test_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "cross-signing.json"
    first = CrossSigningKeys.generate()
    save_key_file(path, USER, first)
    with pytest.raises(CrossSigningError, match="left alone"):
        save_key_file(path, USER, CrossSigningKeys.generate())
    assert load_key_file(path, USER) == first
    assert len(list(tmp_path.iterdir())) == 1


def test_missing_key_file_is_none(tmp_path: Path) -> None:
    assert load_key_file(tmp_path / "nope.json", USER) is None


def test_another_users_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    save_key_file(path, "@other:example.org", CrossSigningKeys.generate())
    with pytest.raises(CrossSigningError, match=r"belongs to @other:example\.org"):
        load_key_file(path, USER)


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: "not json",
        lambda r: {**r, "version": 2},
        lambda r: {k: v for k, v in r.items() if k != "self_signing"},
        lambda r: {**r, "master": {**r["master"], "seed": "!!"}},
        lambda r: {**r, "master": {**r["master"], "seed": b64_encode(bytes(31))}},
        lambda r: {**r, "master": {**r["master"], "public": r["user_signing"]["public"]}},
        lambda r: [r],
    ],
)
def test_a_damaged_key_file_says_restore(tmp_path: Path, damage: Any) -> None:
    path = tmp_path / "k.json"
    save_key_file(path, USER, CrossSigningKeys.generate())
    damaged = damage(json.loads(path.read_text()))
    path.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    with pytest.raises(CrossSigningError, match="damaged"):
        load_key_file(path, USER)


def test_set_aside_keeps_every_copy(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    copies = []
    for _ in range(3):
        keys = CrossSigningKeys.generate()
        save_key_file(path, USER, keys)
        aside = set_key_file_aside(path)
        assert not path.exists()
        assert load_key_file(aside, USER) == keys
        copies.append(aside)
    assert len(set(copies)) == 3
    assert all(c.name.startswith("k.json.replaced-") for c in copies)


def test_signable_bytes_leave_out_signatures_and_unsigned() -> None:
    obj = {"a": 1, "signatures": {"x": {}}, "unsigned": {"age": 3}}
    assert signable_bytes(obj) == b'{"a":1}'
