"""The one exception hierarchy: who is meant to read an error decides its branch.

- `Refusal`: the bot declines what a user asked; its text is written for that user and is
  the only exception text a command's answer may carry.
- `OperatorError`: the bot cannot run as configured (configuration, start-up, database,
  keys); its text tells the operator what to do and `exit_code` is what the process returns.
- `TransientError`: a call that may work later (the homeserver is unreachable or busy).

Anything else escaping a handler is a bug: the user sees "something went wrong (ref …)"
and the traceback goes to the log under that reference, never the exception's text.
It lives in the domain (standard library only) so every layer, the domain included, can
import it without breaking the dependency rule (tests/unit/test_layering.py).
"""

from __future__ import annotations


class BotError(Exception):
    """The root of every error the bot raises on purpose."""


class Refusal(BotError):
    """The bot declines a user's request; the message is one user-fit sentence.

    `Refusal(N_("there is no request #%(number)s."), number=7)`: the message is a catalog
    message with named placeholders and `params` their values, so the edge that answers
    says it in the reader's language (`Language._(exc.message, **exc.params)`); `str(exc)`
    is the English sentence. A plain sentence (no params) is shown as it is.
    """

    def __init__(self, message: str, **params: object) -> None:
        self.message = message
        self.params = params
        super().__init__(message % params if params else message)


class OperatorError(BotError):
    """The bot cannot run until the operator acts; the message says what to do."""

    exit_code: int = 1  # what the process exits with when this stops it


class TransientError(BotError):
    """A failure that may go away by itself: retry later."""
