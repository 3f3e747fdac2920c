"""A throwaway local Synapse homeserver for the real test layer and ``consensus-bot demo``.

The harness uses only the standard library: it generates a Synapse config once per work
directory, layers a JSON overrides file on top of it (YAML is a superset of JSON, so no YAML
library is needed), runs ``synapse.app.homeserver`` as a child process bound to loopback and
talks to it over plain HTTP.

Typical use::

    with LocalSynapse(Path("/tmp/hs")) as hs:
        alice = hs.register("alice")
        print(hs.base_url, alice.access_token)

The server listens on ``127.0.0.1`` only, has registration closed (users are created through
the shared-secret admin API) and, by default, rate limits raised far enough that tests are not
throttled. Pass ``relaxed_rate_limits=False`` to keep Synapse's own defaults.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["LocalSynapse", "RegisteredUser", "free_port"]

#: Localpart of the admin account the harness creates for its own admin API calls.
HARNESS_ADMIN_LOCALPART = "harness-admin"

#: Generous limit used for every ``rc_*`` setting when rate limits are relaxed.
_RELAXED: dict[str, float] = {"per_second": 1000, "burst_count": 1000}

#: Every rate limiter Synapse 1.163 reads in ``synapse/config/ratelimiting.py`` that takes the
#: new-style ``{per_second, burst_count}`` shape. Nested limiters are dicts of such settings.
_RELAXED_RATE_LIMITS: dict[str, Any] = {
    "rc_message": _RELAXED,
    "rc_registration": _RELAXED,
    "rc_registration_token_validity": _RELAXED,
    "rc_login": {"address": _RELAXED, "account": _RELAXED, "failed_attempts": _RELAXED},
    "rc_admin_redaction": _RELAXED,
    "rc_joins": {"local": _RELAXED, "remote": _RELAXED},
    "rc_joins_per_room": _RELAXED,
    "rc_key_requests": _RELAXED,
    "rc_3pid_validation": _RELAXED,
    "rc_invites": {"per_room": _RELAXED, "per_user": _RELAXED, "per_issuer": _RELAXED},
    "rc_third_party_invite": _RELAXED,
    "rc_media_create": _RELAXED,
    "rc_presence": {"per_user": _RELAXED},
    "rc_delayed_event_mgmt": _RELAXED,
    "rc_room_creation": _RELAXED,
    "rc_reports": _RELAXED,
    "rc_user_directory": _RELAXED,
    "rc_profile": _RELAXED,
}

_LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class RegisteredUser:
    """A user on the local homeserver together with a logged-in device."""

    user_id: str
    localpart: str
    password: str
    access_token: str
    device_id: str


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def default_password(localpart: str) -> str:
    """Return the deterministic password used when ``register`` is given none.

    Deterministic so that a re-used work directory can log the same user in again. The
    server only listens on loopback and holds throwaway accounts.
    """
    return f"local-{localpart}-pw"


class _HttpError(RuntimeError):
    """An HTTP call to the homeserver answered with an error status."""

    def __init__(self, method: str, path: str, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body}")
        self.status = status
        self.body = body

    @property
    def errcode(self) -> str | None:
        """The Matrix ``errcode`` of the response, if any."""
        code = self.body.get("errcode")
        return code if isinstance(code, str) else None


class LocalSynapse:
    """A Synapse homeserver running as a child process, configured for local use.

    The constructor does no I/O. ``start`` generates the base config on first use, writes the
    overrides and waits until the client API answers; ``stop`` terminates the process. The
    port is chosen on the first ``start`` (unless given) and kept across ``stop``/``start`` so
    a restarted server keeps its address, and the database in ``workdir`` keeps its users.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        relaxed_rate_limits: bool = True,
        server_name: str = "localhost",
        federation: bool = False,
    ) -> None:
        """Remember the settings; nothing is created or started until ``start``.

        With ``federation`` the server also listens for other homeservers over TLS (a
        self-signed certificate) on a port of its own, and its server name is
        ``127.0.0.1:PORT`` so that other local servers find it without DNS or well-known;
        it talks to loopback servers without checking their certificates (tests only).
        """
        self._workdir = Path(workdir)
        self._port = port
        self._relaxed_rate_limits = relaxed_rate_limits
        self._server_name = server_name
        self._federation = federation
        self._federation_port: int | None = None
        self._shared_secret = secrets.token_hex(32)
        self._process: subprocess.Popen[bytes] | None = None
        self._stdout_log: IO[bytes] | None = None
        self._admin: RegisteredUser | None = None
        self.last_start_seconds: float | None = None

    # ------------------------------------------------------------------ properties

    @property
    def workdir(self) -> Path:
        """Directory holding the config, database, media store and logs."""
        return self._workdir

    @property
    def port(self) -> int:
        """TCP port of the client listener (chosen on first access if not given)."""
        if self._port is None:
            self._port = free_port()
        return self._port

    @property
    def base_url(self) -> str:
        """Base URL of the client-server API, e.g. ``http://127.0.0.1:8448``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def federation_port(self) -> int:
        """TCP port of the federation listener (with ``federation``)."""
        if self._federation_port is None:
            self._federation_port = free_port()
        return self._federation_port

    @property
    def server_name(self) -> str:
        """The homeserver's server name (the part after ``:`` in user IDs)."""
        if self._federation:
            return f"127.0.0.1:{self.federation_port}"
        return self._server_name

    @property
    def is_running(self) -> bool:
        """Whether the Synapse process has been started and has not exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def config_path(self) -> Path:
        """The generated base config file."""
        return self._workdir / "homeserver.yaml"

    @property
    def overrides_path(self) -> Path:
        """The overrides file layered on top of the base config."""
        return self._workdir / "overrides.yaml"

    @property
    def log_path(self) -> Path:
        """Synapse's own log file (warnings and above)."""
        return self._workdir / "homeserver.log"

    @property
    def stdout_log_path(self) -> Path:
        """Where the process's stdout and stderr are appended."""
        return self._workdir / "homeserver.stdout.log"

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 90.0) -> None:
        """Start the homeserver and wait until its client API answers.

        Generates the base config on first use in this work directory, (re)writes the
        overrides and the log config, spawns Synapse in its own session and polls
        ``/_matrix/client/versions``. Sets ``last_start_seconds``.

        Raises:
            RuntimeError: if config generation fails, the process exits early or the server
                does not answer within ``timeout`` seconds.
        """
        if self.is_running:
            return
        began = time.monotonic()
        self._workdir.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            self._generate_config(timeout)
        self._write_overrides()

        self._stdout_log = self.stdout_log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [
                sys.executable,
                "-m",
                "synapse.app.homeserver",
                "--config-path",
                str(self.config_path),
                "--config-path",
                str(self.overrides_path),
            ],
            cwd=self._workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_until_ready(began + timeout)
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - began

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the homeserver: SIGTERM, wait up to ``timeout`` seconds, then SIGKILL.

        Idempotent, and a no-op if the server was never started.
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._stdout_log is not None:
            self._stdout_log.close()
            self._stdout_log = None

    def __enter__(self) -> LocalSynapse:
        """Start the server for the duration of a ``with`` block."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server when the ``with`` block ends."""
        self.stop()

    # ------------------------------------------------------------------ users

    def register(
        self, localpart: str, password: str | None = None, *, admin: bool = False
    ) -> RegisteredUser:
        """Create a user through the shared-secret admin API and return its session.

        If the localpart is already taken (e.g. a re-used work directory) the user is logged
        in with ``password`` instead. Without a password a deterministic one is used
        (see ``default_password``), so the same call works again on a re-used work directory.
        """
        password = password if password is not None else default_password(localpart)
        path = "/_synapse/admin/v1/register"
        nonce = str(self._request("GET", path)["nonce"])
        mac = hmac.new(self._shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode()]))
        mac.update(b"\x00admin" if admin else b"\x00notadmin")
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        try:
            reply = self._request("POST", path, body)
        except _HttpError as err:
            if err.status != 400 or err.errcode != "M_USER_IN_USE":
                raise
            reply = self._login(localpart, password)
        return RegisteredUser(
            user_id=str(reply["user_id"]),
            localpart=localpart,
            password=password,
            access_token=str(reply["access_token"]),
            device_id=str(reply["device_id"]),
        )

    def exempt_from_rate_limits(self, user_id: str) -> None:
        """Lift all message rate limits for ``user_id`` via Synapse's ``override_ratelimit``.

        Uses an internal admin account (``harness-admin``), registered on first use.
        """
        if self._admin is None:
            self._admin = self.register(HARNESS_ADMIN_LOCALPART, admin=True)
        quoted = urllib.parse.quote(user_id, safe="")
        self._request(
            "POST",
            f"/_synapse/admin/v1/users/{quoted}/override_ratelimit",
            {"messages_per_second": 0, "burst_count": 0},
            token=self._admin.access_token,
        )

    # ------------------------------------------------------------------ internals

    def _login(self, localpart: str, password: str) -> dict[str, Any]:
        """Log ``localpart`` in with a password and return the login response."""
        return self._request(
            "POST",
            "/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": localpart},
                "password": password,
            },
        )

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Make a JSON request to the homeserver; raise ``_HttpError`` on an error status."""
        data = json.dumps(body).encode() if body is not None else None
        url = self.base_url + path  # always our own http://127.0.0.1 URL
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            # Our own http://127.0.0.1 URL, never user-supplied.
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return _json_object(response.read())
        except urllib.error.HTTPError as err:
            raise _HttpError(method, path, err.code, _json_object(err.read())) from None

    def _generate_config(self, timeout: float) -> None:
        """Run Synapse's ``--generate-config`` once to create the base config and keys."""
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [
                sys.executable,
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                self.server_name,
                "--config-path",
                str(self.config_path),
                "--generate-config",
                "--report-stats=no",
            ],
            cwd=self._workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0 or not self.config_path.exists():
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise RuntimeError(
                f"Synapse config generation failed (exit {result.returncode}):\n{output}"
            )

    def _write_overrides(self) -> None:
        """Write the log config and the overrides file (as JSON, which YAML accepts)."""
        log_config_path = self._workdir / "log_config.yaml"
        log_config = {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s"
                }
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "level": "WARNING",
                    "encoding": "utf8",
                }
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        log_config_path.write_text(json.dumps(log_config, indent=2) + "\n")

        overrides: dict[str, Any] = {
            "server_name": self.server_name,
            "listeners": self._client_listeners(),
            "database": {
                "name": "sqlite3",
                "args": {"database": str(self._workdir / "homeserver.db")},
            },
            "trusted_key_servers": [],
            "report_stats": False,
            "suppress_key_server_warning": True,
            "bcrypt_rounds": 4,
            "presence": {"enabled": False},
            "sync_response_cache_duration": 0,
            "registration_shared_secret": self._shared_secret,
            "enable_registration": False,
            "url_preview_enabled": False,
            "media_store_path": str(self._workdir / "media_store"),
            "log_config": str(log_config_path),
            "pid_file": str(self._workdir / "homeserver.pid"),
        }
        if self._federation:
            overrides.update(self._federation_overrides())
        if self._relaxed_rate_limits:
            overrides.update(_RELAXED_RATE_LIMITS)
        self.overrides_path.write_text(json.dumps(overrides, indent=2) + "\n")

    def _federation_overrides(self) -> dict[str, Any]:
        """A TLS federation listener on loopback, and leave to talk to other loopback servers
        (Synapse refuses 127.0.0.0/8 for federation unless allowed, and checks certificates)."""
        cert, key = self._workdir / "federation.crt", self._workdir / "federation.key"
        if not cert.exists():
            _self_signed(cert, key)
        listener = {
            "port": self.federation_port,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "tls": True,
            "x_forwarded": False,
            "resources": [{"names": ["federation", "keys"], "compress": False}],
        }
        return {
            "listeners": [*self._client_listeners(), listener],
            "tls_certificate_path": str(cert),
            "tls_private_key_path": str(key),
            "federation_verify_certificates": False,
            "use_insecure_ssl_client_just_for_testing_do_not_use": True,
            "ip_range_whitelist": ["127.0.0.1"],
            # The allow list is not consulted for IP literals in server names (Synapse's
            # BlocklistingAgentWrapper): leave loopback off the block list itself.
            "ip_range_blacklist": ["192.0.2.0/24"],
        }

    def _client_listeners(self) -> list[dict[str, Any]]:
        return [
            {
                "port": self.port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ]

    def _wait_until_ready(self, deadline: float) -> None:
        """Poll ``/_matrix/client/versions`` until it answers 200, the process dies or time's up."""
        url = self.base_url + "/_matrix/client/versions"
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise RuntimeError(
                    f"Synapse exited during startup (exit code {code}).\n{self._log_tail()}"
                )
            try:
                # Our own http://127.0.0.1 URL, never user-supplied.
                with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() >= deadline:
                raise RuntimeError(f"Synapse did not answer on {url} in time.\n{self._log_tail()}")
            time.sleep(0.1)

    def _log_tail(self) -> str:
        """The last lines of the process output and of Synapse's log, for error messages."""
        parts = []
        for path in (self.stdout_log_path, self.log_path):
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
                parts.append(f"--- {path} (last {len(lines)} lines) ---\n" + "\n".join(lines))
            else:
                parts.append(f"--- {path} (missing) ---")
        return "\n".join(parts)


def _json_object(raw: bytes) -> dict[str, Any]:
    """Decode a JSON object from a response body; non-objects and junk become ``{}``."""
    try:
        value = json.loads(raw.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _self_signed(cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate for 127.0.0.1 (the federation listener of a test server)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
