"""One exception hierarchy (issue 22): every error class the bot raises on purpose sits on
the branch of whoever must read it: `Refusal` (users), `OperatorError` (operators, with an
exit code), or a transient homeserver failure."""

from __future__ import annotations

from bot.app import StartupError
from bot.config import ConfigError
from bot.domain.durations import DurationError
from bot.domain.errors import BotError, OperatorError, Refusal, TransientError
from bot.domain.lifecycle import LifecycleError
from bot.init_config import InitError
from bot.matrix.crosssign import CrossSigningError
from bot.matrix.crypto import CryptoError
from bot.matrix.gateway import AuthLost, GatewayError
from bot.matrix.keystore import KeyStoreError
from bot.services.export import ExportError
from commands.spec import ConversionError
from storage.backup import BackupError
from storage.database import DatabaseError
from storage.dsn import DsnError
from storage.lock import AlreadyRunning
from storage.migrate import MigrationError
from storage.postgres import LeaseLost


def test_every_error_class_sits_on_one_branch_of_the_hierarchy() -> None:
    """Refusals for users, operator errors for start-up and configuration problems."""
    for refusal in (LifecycleError, DurationError, ConversionError, ExportError):
        assert issubclass(refusal, Refusal)
    operator = (
        ConfigError, StartupError, CryptoError, CrossSigningError, KeyStoreError,
        DatabaseError, AlreadyRunning, LeaseLost, AuthLost, MigrationError, BackupError,
        DsnError, InitError,
    )  # fmt: skip
    for error in operator:
        assert issubclass(error, OperatorError)
        assert not issubclass(error, Refusal)
    assert ConfigError.exit_code == DatabaseError.exit_code == 2
    assert StartupError.exit_code == 1
    assert issubclass(GatewayError, BotError)
    assert issubclass(TransientError, BotError)
