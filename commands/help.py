"""Usage lines, `!cb help`, `!cb help COMMAND` and the README reference, all from the table.

The help is said in the reader's language (`lang`; English when None): summaries, details,
argument help and the words around them come from the catalogs (the table marks them with
`N_`); command words, options and placeholders (`N`, `WHEN`) stay as typed. The README
reference is English.
"""

from __future__ import annotations

from bot.domain.text import N_
from bot.i18n.catalog import Language, Phrase, english, phrase
from commands.converters import Choice, shown
from commands.spec import CommandSpec, Option, Param, Place, Positional, Rest, Role, Section
from commands.table import (
    COMMAND_GROUPS,
    LANGUAGE_ALIASES,
    POSITION_DETAILS,
    TABLE,
    find_command,
    language_aliases,
    normalize_name,
    suggest_command,
)

_WHO = {
    Role.ANYONE: N_("anyone"),
    Role.MEMBER: N_("members"),
    Role.CHAIR: N_("chairs"),
    Role.MEMBER_OR_CHAIR: N_("members and chairs"),
}
_WHO_SHORT = {
    Role.ANYONE: "anyone",
    Role.MEMBER: "member",
    Role.CHAIR: "chair",
    Role.MEMBER_OR_CHAIR: "member, chair",
}
_WHERE = {
    Place.MAIN: N_("the main room"),
    Place.REQUEST: N_("a request's room"),
    Place.DM: N_("a direct message to the bot"),
}
_WHERE_SHORT = {Place.MAIN: "main room", Place.REQUEST: "request room", Place.DM: "DM"}


def _param_usage(param: Param) -> str:
    if isinstance(param, Positional):
        return param.label if param.required else f"[{param.label}]"
    if isinstance(param, Rest):
        return f"{param.label}…" if param.required else f"[{param.label}…]"
    text = f"--{param.name} {param.label}"
    return text if param.required else f"[{text}]"


def _param_label(param: Param) -> str:
    if isinstance(param, Option):
        return f"--{param.name} {param.label}"
    if isinstance(param, Rest):
        return f"{param.label}…"
    return param.label


def param_help(param: Param) -> Phrase:
    """A parameter's help as a phrase; `%(choices)s` in it is the converter's choices."""
    converter = param.converter if isinstance(param, Positional | Option) else None
    if isinstance(converter, Choice) and "%(choices)s" in param.help:
        return phrase(param.help, choices=", ".join(converter.values))
    return Phrase(param.help)


def details(spec: CommandSpec, lang: Language | None = None) -> str:
    """A command's details in `lang`. The position commands end theirs with the shared
    POSITION_DETAILS, translated once: the part before it is a message of its own."""
    lang = lang or english()
    text = spec.details
    if text.endswith(POSITION_DETAILS) and text != POSITION_DETAILS:
        head = text[: -len(POSITION_DETAILS)].rstrip()
        return f"{lang._(head)} {lang._(POSITION_DETAILS)}"
    return lang._(text) if text else ""


def usage(spec: CommandSpec, prefix: str) -> str:
    """The usage line, e.g. `!cb object REASON… [--request N]` (words first, then options)."""
    words = [_param_usage(p) for p in spec.params if isinstance(p, Positional | Rest)]
    options = [_param_usage(p) for p in spec.options]
    return " ".join([prefix, spec.name, *words, *options])


def _ordered() -> list[tuple[Section, list[CommandSpec]]]:
    groups = [(section, [s for s in TABLE if s.section is section]) for section in Section]
    return [(section, specs) for section, specs in groups if specs]


def who(spec: CommandSpec, lang: Language | None = None) -> str:
    """Who may use the command, in words (`members and chairs`)."""
    return (lang or english())._(_WHO[spec.role])


def where(spec: CommandSpec, lang: Language | None = None) -> str:
    """Where the command may be sent, in words."""
    lang = lang or english()
    if spec.places == frozenset(Place):
        return lang._("anywhere")
    descriptions = []
    for place in Place:
        if place not in spec.places:
            continue
        text = lang._(_WHERE[place])
        by_number = any(o.name == "request" and isinstance(o, Option) for o in spec.options)
        if place is Place.DM and Place.REQUEST in spec.places and by_number:
            text = lang._("%(place)s (with --request N)", place=text)
        descriptions.append(text)
    said = descriptions[0]
    for other in descriptions[1:]:
        said = lang._("%(place)s, or %(other)s", place=said, other=other)
    return said


def render_help(prefix: str, lang: Language | None = None) -> str:
    """`!cb help`: every command, grouped by section, one line each with usage and summary."""
    lang = lang or english()
    lines = [
        lang._(
            'Commands (send "%(command)s" for details on one):',
            command=f"{prefix} help COMMAND",
        )
    ]
    for section, specs in _ordered():
        lines += ["", lang._(section.value)]
        lines += [f"  {usage(spec, prefix)} — {lang._(spec.summary)}" for spec in specs]
    return "\n".join(lines)


def render_command_help(spec: CommandSpec, prefix: str, lang: Language | None = None) -> str:
    """`!cb help COMMAND`: usage, summary, details, arguments, who and where, examples."""
    lang = lang or english()
    lines = [usage(spec, prefix), lang._(spec.summary)]
    if spec.details:
        lines += ["", details(spec, lang)]
    if spec.params:
        labels = [(_param_label(p), param_help(p).say(lang)) for p in spec.params]
        width = max(len(label) for label, _ in labels)
        lines.append("")
        lines += [f"  {label.ljust(width)}  {text}" for label, text in labels]
    lines += [
        "",
        lang._("Who: %(who)s. Where: %(where)s.", who=who(spec, lang), where=where(spec, lang)),
    ]
    if spec.private_answer:
        lines.append(
            lang._(
                "The answer is given in that request's room or our direct chat; asked anywhere "
                "else, it comes by direct message."
            )
        )
    if spec.aliases:
        also = ", ".join(f"{prefix} {alias}" for alias in spec.aliases)
        lines.append(lang._("Also: %(aliases)s", aliases=also))
    others = language_aliases(spec)
    if others:
        words = ", ".join(f"{prefix} {word} ({code})" for code, word in others)
        lines.append(lang._("In other languages: %(words)s", words=words))
    if spec.examples:
        lines.append(lang.ngettext("Example:", "Examples:", len(spec.examples)))
        lines += [f"  {prefix} {example}" for example in spec.examples]
    return "\n".join(lines)


def render_topic_help(topic: str, prefix: str, lang: Language | None = None) -> str:
    """`!cb help TOPIC` for any TOPIC text: the command's help, a group's, or a suggestion."""
    lang = lang or english()
    words = topic.split()
    if words and words[0] == prefix:
        words = words[1:]
    spec = find_command(" ".join(words))
    if spec is not None:
        return render_command_help(spec, prefix, lang)
    first = normalize_name(words[0]) if words else ""
    if first in COMMAND_GROUPS:
        return "\n\n".join(render_command_help(s, prefix, lang) for s in COMMAND_GROUPS[first])
    if not words:
        return render_help(prefix, lang)
    suggestion = suggest_command(words[0], words[1] if len(words) > 1 else "")
    said = [lang._("There is no command %(text)s.", text=shown(" ".join(words)))]
    if suggestion:
        said.append(lang._("Did you mean %(words)s?", words=f"{prefix} help {suggestion}"))
    said.append(lang._("Send %(help)s for the list.", help=f"{prefix} help"))
    return " ".join(said)


def reference_markdown(prefix: str) -> str:
    """A Markdown table of every command (usage | who | where | what, with its aliases)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| command | who | where | what |", "|---|---|---|---|"]
    for _section, specs in _ordered():
        for spec in specs:
            places = (
                "anywhere"
                if spec.places == frozenset(Place)
                else ", ".join(_WHERE_SHORT[p] for p in Place if p in spec.places)
            )
            what = spec.summary  # the README is English: the table's own text
            if spec.aliases:
                what += " Also: " + ", ".join(f"`{alias}`" for alias in spec.aliases) + "."
            rows.append(
                f"| `{cell(usage(spec, prefix))}` | {_WHO_SHORT[spec.role]} | {places} "
                f"| {cell(what)} |"
            )
    return "\n".join(rows)


def language_aliases_markdown(prefix: str) -> str:
    """A Markdown table of the words each language adds for commands (`LANGUAGE_ALIASES`),
    for the README beside the command reference."""
    codes = list(LANGUAGE_ALIASES)
    rows = ["| command | " + " | ".join(codes) + " |", "|---" * (len(codes) + 1) + "|"]
    for spec in TABLE:
        words = dict(language_aliases(spec))
        if words:
            cells = " | ".join(f"`{words[c]}`" if c in words else "" for c in codes)
            rows.append(f"| `{prefix} {spec.name}` | {cells} |")
    return "\n".join(rows)
