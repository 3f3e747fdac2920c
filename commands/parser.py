"""Read a message body as a command, guided only by the table in `commands.table`.

`parse` never raises on any body: it returns None (not addressed to the bot), a
`ParsedCommand`, or a `ParseFailure` whose message is one sentence fit to show the sender.

Words are split like a shell, tuned for chat:

* whitespace separates words; a word that *starts* with a quote mark (`"`, `'`, `“`, `„`, `‘`,
  …) runs to the matching closing mark (`"`, `”`, `'`, `’`, …) that ends a word, so
  `"Jane Doe"` and `“Jane Doe”` are one word, `--org="ACME Corp"` works too;
* a quote mark inside a word is an ordinary character, so `don't` and `don’t` need no
  escaping, and backslashes are ordinary characters;
* a quote that never closes is kept literally in free text (a reason that starts with an
  apostrophe), and is a usage error where a single value is expected (`request "Jane Doe …`);
* `--name VALUE` and `--name=VALUE` may appear anywhere; `--` ends the options; a quoted word
  is never an option; `—name` (a phone's autocorrected `--`) is accepted for known options.
"""

from __future__ import annotations

import bisect
import difflib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from bot.domain.text import N_
from bot.i18n.catalog import Language, Phrase, phrase
from commands.converters import shown
from commands.help import param_help, usage
from commands.spec import CommandSpec, ConversionError, Option, Positional, Rest
from commands.table import (
    COMMAND_GROUPS,
    TABLE_BY_NAME,
    closest,
    describe_suggestion,
    normalize_name,
    suggest_command,
)

MAX_COMMAND_CHARS = 4000
"""Longer bodies that are addressed to the bot are refused as `too_long`."""

FailureKind = Literal["unknown", "usage", "too_long", "empty"]

# Quote marks. `’` is deliberately not an opener: it is the apostrophe phones type.
_DOUBLE_OPENERS = '"“”„‟'
_DOUBLE_CLOSERS = '"”“‟'
_SINGLE_OPENERS = "'‘‚‛"
_SINGLE_CLOSERS = "'’‘‛"
_AFTER_CLOSER = ",.;:!?)]}"
_OPTION_DASHES = "—–"  # em and en dash: what phones make of `--`
# Invisible characters some clients put before the text.
_INVISIBLE = (
    "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"  # zero-width, LRM/RLM, BOM
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"  # bidi embeddings and isolates
)
_LINE_BREAKS = "\n\x85\u2028\u2029"
_KEPT_CONTROLS = "\n\t"
# `#7` (trailing punctuation forgiven: `support #7, good work`).
_HASH_NUMBER = re.compile(r"#[0-9]+[,.;:]?", re.ASCII)


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A well-formed command.

    `args` holds every parameter the command declares, keyed by its name (options too, without
    dashes): the converted value, or None when an optional one was not given. `raw` is the
    message body exactly as received.

    `spec` is always the real command: `!cb yes` and `!cb vote yes` parse to `support`'s spec.
    `alias` is the other name the sender typed for it, as compared (lower-case, e.g. `yes`,
    `+1`, `no objection`), or None when they typed the command's own name. It is for messages
    only; dispatch on `spec.name`.

    `note` is None, or a note for the sender to be sent with the acknowledgement when the
    command succeeds (it says what was recorded): `!cb vote yes` gives "There is no vote here:
    positions are support, no-objection, concern, object, abstain (recorded as support)." When
    the command is refused (not eligible, ballot closed…), send the refusal without it. It is
    a Phrase, said in the reader's language by the edge; `hint` is its English text.
    """

    spec: CommandSpec
    args: Mapping[str, object]
    raw: str
    alias: str | None = None
    note: Phrase | None = None

    @property
    def hint(self) -> str | None:
        """The note in English, or None."""
        return None if self.note is None else self.note.say()

    @property
    def name(self) -> str:
        """The canonical command name (aliases resolved), e.g. `no-objection`, `member add`."""
        return self.spec.name

    def get_str(self, key: str) -> str | None:
        """The text argument `key`, or None when absent."""
        value = self.args[key]
        if value is not None and not isinstance(value, str):
            raise TypeError(f"argument {key!r} of {self.name} is not text")
        return value

    def get_int(self, key: str) -> int | None:
        """The integer argument `key` (numbers, durations, times in ms), or None when absent."""
        value = self.args[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"argument {key!r} of {self.name} is not an integer")
        return value

    def require_str(self, key: str) -> str:
        """The text argument `key` of a required parameter."""
        value = self.get_str(key)
        if value is None:
            raise KeyError(key)
        return value

    def require_int(self, key: str) -> int:
        """The integer argument `key` of a required parameter."""
        value = self.get_int(key)
        if value is None:
            raise KeyError(key)
        return value


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """A body addressed to the bot that is not a valid command.

    kind: `unknown` (no such command; `suggestion` may hold the words of a close one: its
    name, or the alias that was closest, e.g. `agree` for `agre`), `usage` (missing,
    extra or invalid arguments; `usage` holds the usage line(s), `command` the command name),
    `too_long` (over MAX_COMMAND_CHARS) or `empty` (just the prefix; `suggestion` is `help`).

    The message is kept as phrases (`bot.i18n.catalog.Phrase`), said in the reader's
    language by `render(lang)`; `message` is their English text.
    """

    kind: FailureKind
    phrases: tuple[Phrase, ...]
    usage: str | None = None
    suggestion: str | None = None
    command: str | None = None

    @property
    def message(self) -> str:
        """The message in English (without the usage)."""
        return self.say()

    def say(self, lang: Language | None = None) -> str:
        """The message in `lang` (English when None), without the usage."""
        return " ".join(p.say(lang) for p in self.phrases)

    def render(self, lang: Language | None = None) -> str:
        """The reply to send, in `lang` (English when None): the message, then the usage
        when there is one (its command words and placeholders stay as typed)."""
        text = self.say(lang)
        if self.usage is None:
            return text
        usage_line = Phrase(N_("Usage: %(usage)s"), {"usage": self.usage}).say(lang)
        return f"{text}\n{usage_line}"


@dataclass(frozen=True, slots=True)
class _Token:
    text: str  # quote marks of a quotation removed
    raw: str  # as typed
    quoted: bool  # begins with a closed quotation: never an option
    unclosed: str | None  # a quote mark that opened and never closed
    breaks: int  # line breaks in the whitespace before the token


class _Failed(Exception):
    """Internal: carries a ParseFailure out of nested helpers."""

    def __init__(self, failure: ParseFailure) -> None:
        super().__init__(failure.kind)
        self.failure = failure


def _closer_positions(text: str, closers: str) -> list[int]:
    """Indexes of quote marks in `closers` that end a word (whitespace, punctuation or end)."""
    last = len(text) - 1
    return [
        j
        for j, c in enumerate(text)
        if c in closers and (j == last or text[j + 1].isspace() or text[j + 1] in _AFTER_CLOSER)
    ]


def _tokenize(text: str) -> list[_Token]:
    """Split `text` into words (see the module docstring). Linear-logarithmic, never raises."""
    closers = {
        "double": _closer_positions(text, _DOUBLE_CLOSERS),
        "single": _closer_positions(text, _SINGLE_CLOSERS),
    }
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while True:
        breaks = 0
        while i < n and text[i].isspace():
            c = text[i]
            if c in _LINE_BREAKS or (c == "\r" and text[i + 1 : i + 2] != "\n"):
                breaks += 1
            i += 1
        if i >= n:
            return tokens
        start = i
        parts: list[str] = []
        quoted = False
        unclosed: str | None = None
        while i < n and not text[i].isspace():
            c = text[i]
            at_start = i == start
            after_equals = i > start and text[i - 1] == "=" and text[start] in "-" + _OPTION_DASHES
            if (at_start or after_equals) and (c in _DOUBLE_OPENERS or c in _SINGLE_OPENERS):
                positions = closers["double" if c in _DOUBLE_OPENERS else "single"]
                k = bisect.bisect_right(positions, i)
                if k < len(positions):
                    end = positions[k]
                    parts.append(text[i + 1 : end])
                    quoted = quoted or at_start
                    i = end + 1
                    continue
                unclosed = unclosed or c
            parts.append(c)
            i += 1
        tokens.append(_Token("".join(parts), text[start:i], quoted, unclosed, breaks))


def _skip_leading(body: str) -> str:
    i = 0
    while i < len(body) and (body[i].isspace() or body[i] in _INVISIBLE):
        i += 1
    return body[i:]


def parse(body: str, prefix: str, now_ms: int) -> ParsedCommand | ParseFailure | None:
    """Parse `body` as a command for the bot addressed with `prefix` (e.g. `!cb`).

    Returns None unless the body (after leading whitespace) starts with `prefix` followed by
    whitespace or its end; the prefix is case-sensitive, command names are not. `now_ms` is
    handed to converters (WHEN arguments become absolute times). Raises only ValueError for an
    empty prefix or one containing whitespace, never because of the body.
    """
    if not prefix or any(c.isspace() for c in prefix):
        raise ValueError("the command prefix must be non-empty and contain no whitespace")
    text = _skip_leading(body)
    if not text.startswith(prefix):
        return None
    after = text[len(prefix) :]
    if after and not after[0].isspace():
        return None
    if len(body) > MAX_COMMAND_CHARS:
        too_long = N_("That is too long for a command (over %(limit)s characters).")
        return ParseFailure("too_long", (phrase(too_long, limit=MAX_COMMAND_CHARS),))
    tokens = _tokenize(after)
    if not tokens:
        empty = phrase(N_("Send %(help)s to see what I can do."), help=f"{prefix} help")
        return ParseFailure("empty", (empty,), suggestion="help")
    try:
        spec, used, alias = _resolve(tokens, prefix)
        words = list(tokens[used:])
        note = None
        if spec.forwards:
            spec, words, alias, note = _forward(spec, words, prefix)
        args = _bind(spec, words, prefix, now_ms, alias)
    except _Failed as failed:
        return failed.failure
    return ParsedCommand(spec, MappingProxyType(args), body, alias, note)


def _lookup(tokens: Sequence[_Token]) -> tuple[CommandSpec, int, str | None] | None:
    """The table entry named by the first word or two, how many words that took, and the
    alias typed (None for the entry's own name); None when there is none."""
    first = normalize_name(tokens[0].text)
    # `no, they have not…`, `no objection, fine`: punctuation after a name does not hide it.
    bare = first.rstrip(_AFTER_CLOSER) or first  # `?` stays `?`
    second = normalize_name(tokens[1].text).rstrip(_AFTER_CLOSER) if len(tokens) > 1 else ""
    for name, used in ((f"{first} {second}", 2), (first, 1), (bare, 1)):
        if (used == 1 or second) and name in TABLE_BY_NAME:
            spec = TABLE_BY_NAME[name]
            return spec, used, None if name == spec.name else name
    return None


def _forward(
    front: CommandSpec, words: list[_Token], prefix: str
) -> tuple[CommandSpec, list[_Token], str | None, Phrase]:
    """`vote X …`: the command X names, the words left for it, the alias typed for X and the
    hint to send; raise _Failed (listing the choices) when X is missing or not one of them."""
    choices = ", ".join(front.forwards)
    lead = words[:1] if len(words) > 1 and _is_hash_word(words[0]) else []  # `vote #2 yes`
    words = words[len(lead) :]
    found = _lookup(words) if words else None
    if found is not None and found[0].name in front.forwards:
        spec, used, alias = found
        return (
            spec,
            lead + words[used:],
            alias,
            phrase(front.hint, command=spec.name, choices=choices),
        )

    def refuse(*phrases: Phrase, suggestion: str | None = None) -> _Failed:
        return _Failed(
            ParseFailure(
                "usage",
                phrases,
                usage=usage(front, prefix),
                suggestion=suggestion,
                command=front.name,
            )
        )

    if not words:
        raise refuse(
            phrase(
                N_("There is no %(word)s here: say your position, one of %(choices)s."),
                word=front.name,
                choices=choices,
            )
        )
    if found is not None and not found[0].forwards:  # not one of the choices: `vote withdraw`
        name = found[0].name
        raise refuse(
            phrase(
                N_(
                    "There is no %(word)s here: %(word)s takes one of %(choices)s; send "
                    "%(command)s on its own."
                ),
                word=front.name,
                choices=choices,
                command=f"{prefix} {name}",
            ),
            suggestion=name,
        )
    targets = [TABLE_BY_NAME[t] for t in front.forwards]
    close = closest(
        normalize_name(words[0].text)[:40],
        [*front.forwards, *(a for t in targets for a in t.aliases)],
    )
    said = [phrase(N_("%(text)s is not a position."), text=shown(words[0].text))]
    if close:
        said.append(_did_you_mean(f"{prefix} {describe_suggestion(close)}"))
    said.append(
        phrase(
            N_("There is no %(word)s here: positions are %(choices)s."),
            word=front.name,
            choices=choices,
        )
    )
    raise refuse(*said, suggestion=close)


def _either(names: list[str]) -> Phrase | str:
    """`a or b` (`a, b or c`), the `or` in the reader's language."""
    if len(names) == 1:
        return names[0]
    return phrase(N_("%(first)s or %(last)s"), first=", ".join(names[:-1]), last=names[-1])


def _did_you_mean(words: str) -> Phrase:
    return phrase(N_("Did you mean %(words)s?"), words=words)


def _resolve(tokens: Sequence[_Token], prefix: str) -> tuple[CommandSpec, int, str | None]:
    """The entry named by the first word or two, how many words that took, and the alias
    typed (None for the entry's own name); raise _Failed when there is none."""
    found = _lookup(tokens)
    if found is not None:
        return found
    first = normalize_name(tokens[0].text)
    second = normalize_name(tokens[1].text) if len(tokens) > 1 else ""
    if first in COMMAND_GROUPS:
        group = COMMAND_GROUPS[first]
        raise _Failed(
            ParseFailure(
                "usage",
                (
                    phrase(
                        N_("Say which: %(commands)s."), commands=_either([s.name for s in group])
                    ),
                ),
                usage="\n".join(usage(s, prefix) for s in group),
                command=first,
            )
        )
    suggestion = suggest_command(first, second)
    said = [phrase(N_("I don't know the command %(text)s."), text=shown(tokens[0].text))]
    if suggestion is not None:
        said.append(_did_you_mean(f"{prefix} {describe_suggestion(suggestion)}"))
    said.append(phrase(N_("Send %(help)s for the list."), help=f"{prefix} help"))
    raise _Failed(ParseFailure("unknown", tuple(said), suggestion=suggestion))


def _bind(
    spec: CommandSpec, tokens: Sequence[_Token], prefix: str, now_ms: int, alias: str | None
) -> dict[str, object]:
    """Assign words to the spec's parameters and convert them (`alias`: the name typed)."""

    def fail(*phrases: Phrase, suggestion: str | None = None) -> _Failed:
        return _Failed(
            ParseFailure(
                "usage",
                phrases,
                usage=usage(spec, prefix),
                suggestion=suggestion,
                command=spec.name,
            )
        )

    def convert(param: Positional | Option, token_text: str, unclosed: str | None) -> object:
        if unclosed is not None:
            raise fail(
                phrase(
                    N_("A quote mark (%(mark)s) is never closed; close it or leave it out."),
                    mark=unclosed,
                )
            )
        try:
            return param.converter.convert(token_text, now_ms)
        except ConversionError as error:
            said = Phrase(error.message, error.params)
            if isinstance(param, Option):
                option = phrase(N_("--%(option)s: %(error)s"), option=param.name, error=said)
                raise fail(option) from None
            raise fail(said) from None

    options = {p.name: p for p in spec.options}
    values: dict[str, object] = dict.fromkeys((p.name for p in spec.params), None)
    given: set[str] = set()
    words: list[_Token] = []
    options_done = False
    plain = len(tokens)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        option = None if options_done or token.quoted else _option_name(token.text, options)
        if option is None:
            if token.text == "--" and not token.quoted and not options_done:
                options_done = True
                plain = len(words)  # words from here on are text, never `#N`
            else:
                words.append(token)
            continue
        name, inline = option
        param = options.get(name)
        if param is None:
            close = difflib.get_close_matches(name[:40], list(options), n=1, cutoff=0.6)
            option_list = ", ".join(f"--{o}" for o in options) or Phrase(N_("none"))
            said = [
                phrase(
                    N_("%(command)s has no option %(text)s (options: %(options)s)."),
                    command=spec.name,
                    text=shown("--" + name),
                    options=option_list,
                )
            ]
            if close:
                said.append(_did_you_mean(f"--{close[0]}"))
            raise fail(*said, suggestion=f"--{close[0]}" if close else None)
        if name in given:
            raise fail(phrase(N_("--%(option)s is given twice."), option=name))
        given.add(name)
        if inline is not None:
            values[name] = convert(param, inline, token.unclosed)
            continue
        if i >= len(tokens) or (
            not tokens[i].quoted
            and (tokens[i].text == "--" or _option_name(tokens[i].text, options) is not None)
        ):
            raise fail(
                phrase(
                    N_("--%(option)s needs a value (%(label)s)."), option=name, label=param.label
                )
            )
        values[name] = convert(param, tokens[i].text, tokens[i].unclosed)
        i += 1

    remaining = list(words)
    hash_option = next((o for o in spec.options if o.hash_word), None)
    if hash_option is not None:
        # `support #2 Good work`, `hum for #2`: a `#N` where the positionals and the first word
        # of the free text go is the option (the request number), not text.
        lead = min(len(spec.positionals) + 1, plain)
        index = next((k for k, w in enumerate(remaining[:lead]) if _is_hash_word(w)), None)
        if index is not None:
            word = remaining.pop(index)
            try:
                text = unicodedata.normalize("NFKC", word.text).rstrip(",.;:")
                number = hash_option.converter.convert(text, now_ms)
            except ConversionError as error:
                raise fail(Phrase(error.message, error.params)) from None
            name = hash_option.name
            if name not in given:
                values[name] = number
                given.add(name)
            elif values[name] != number:
                raise fail(
                    phrase(
                        N_("%(text)s and %(option)s disagree; give one."),
                        text=shown(word.text),
                        option=f"--{name} {values[name]}",
                    )
                )
    for positional in spec.positionals:
        if remaining:
            word = remaining.pop(0)
            values[positional.name] = convert(positional, word.text, word.unclosed)
        elif positional.required:
            raise fail(_missing(spec, positional, alias))

    rest = spec.rest
    if rest is not None:
        text = _join(remaining)
        if text:
            values[rest.name] = text
        elif rest.required:
            raise fail(_missing(spec, rest, alias))
    elif remaining:
        raise fail(phrase(N_("%(text)s was not expected here."), text=shown(remaining[0].raw)))

    for param in spec.options:
        if isinstance(param, Option) and param.required and param.name not in given:
            raise fail(
                phrase(
                    N_("%(command)s needs %(label)s: %(help)s."),
                    command=spec.name,
                    label=f"--{param.name} {param.label}",
                    help=param_help(param),
                )
            )
    return values


def _is_hash_word(token: _Token) -> bool:
    """Whether the word is a number written `#N` (typed as such, not quoted)."""
    text = unicodedata.normalize("NFKC", token.text)
    return not token.quoted and _HASH_NUMBER.fullmatch(text) is not None


def _missing(spec: CommandSpec, param: Positional | Rest, alias: str | None) -> Phrase:
    label = f"{param.label}…" if isinstance(param, Rest) else param.label
    if alias is None:
        return phrase(
            N_("%(command)s needs %(label)s: %(help)s."),
            command=spec.name,
            label=label,
            help=param_help(param),
        )
    return phrase(
        N_("%(alias)s means %(command)s, which needs %(label)s: %(help)s."),
        alias=alias,
        command=spec.name,
        label=label,
        help=param_help(param),
    )


def _option_name(text: str, options: Mapping[str, Option]) -> tuple[str, str | None] | None:
    """(name, inline value) when `text` is an option word, else None.

    `--anything` is always an option word (unknown names are reported); `—name` and `–name`
    only when `name` is one of the command's options, so dashes in prose stay prose.
    """
    if text.startswith("--") and len(text) > 2:
        body = text[2:]
    elif text[:1] in _OPTION_DASHES and len(text) > 1 and text[1] not in _OPTION_DASHES:
        body = text[1:]
    else:
        return None
    name, equals, value = body.partition("=")
    name = normalize_name(name)
    if not text.startswith("--") and name not in options:
        return None
    return name, (value if equals else None)


def _join(tokens: Sequence[_Token]) -> str:
    """Free text from its words: as typed, single spaces, line breaks kept (at most one blank)."""
    if len(tokens) == 1 and tokens[0].quoted and tokens[0].raw[1:-1] == tokens[0].text:
        joined = tokens[0].text
    else:
        pieces: list[str] = []
        for index, token in enumerate(tokens):
            if index:
                pieces.append("\n" * min(token.breaks, 2) if token.breaks else " ")
            pieces.append(token.raw)
        joined = "".join(pieces)
    cleaned = "".join(c for c in joined if c in _KEPT_CONTROLS or unicodedata.category(c) != "Cc")
    return cleaned.strip()
