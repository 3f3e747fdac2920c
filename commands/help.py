"""Usage lines, `!cb help`, `!cb help COMMAND` and the README reference, all from the table."""

from __future__ import annotations

from commands.converters import shown
from commands.spec import CommandSpec, Option, Param, Place, Positional, Rest, Role, Section
from commands.table import (
    COMMAND_GROUPS,
    LANGUAGE_ALIASES,
    TABLE,
    find_command,
    language_aliases,
    normalize_name,
    suggest_command,
)

_WHO = {
    Role.ANYONE: "anyone",
    Role.MEMBER: "members",
    Role.CHAIR: "chairs",
    Role.MEMBER_OR_CHAIR: "members and chairs",
}
_WHO_SHORT = {
    Role.ANYONE: "anyone",
    Role.MEMBER: "member",
    Role.CHAIR: "chair",
    Role.MEMBER_OR_CHAIR: "member, chair",
}
_WHERE = {
    Place.MAIN: "the main room",
    Place.REQUEST: "a request's room",
    Place.DM: "a direct message to the bot",
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


def usage(spec: CommandSpec, prefix: str) -> str:
    """The usage line, e.g. `!cb object REASON… [--request N]` (words first, then options)."""
    words = [_param_usage(p) for p in spec.params if isinstance(p, Positional | Rest)]
    options = [_param_usage(p) for p in spec.options]
    return " ".join([prefix, spec.name, *words, *options])


def _ordered() -> list[tuple[Section, list[CommandSpec]]]:
    groups = [(section, [s for s in TABLE if s.section is section]) for section in Section]
    return [(section, specs) for section, specs in groups if specs]


def who(spec: CommandSpec) -> str:
    """Who may use the command, in words (`members and chairs`)."""
    return _WHO[spec.role]


def where(spec: CommandSpec) -> str:
    """Where the command may be sent, in words."""
    if spec.places == frozenset(Place):
        return "anywhere"
    descriptions = []
    for place in Place:
        if place not in spec.places:
            continue
        text = _WHERE[place]
        by_number = any(o.name == "request" and isinstance(o, Option) for o in spec.options)
        if place is Place.DM and Place.REQUEST in spec.places and by_number:
            text += " (with --request N)"
        descriptions.append(text)
    return ", or ".join(descriptions)


def render_help(prefix: str) -> str:
    """`!cb help`: every command, grouped by section, one line each with usage and summary."""
    lines = [f'Commands (send "{prefix} help COMMAND" for details on one):']
    for section, specs in _ordered():
        lines += ["", section.value]
        lines += [f"  {usage(spec, prefix)} — {spec.summary}" for spec in specs]
    return "\n".join(lines)


def render_command_help(spec: CommandSpec, prefix: str) -> str:
    """`!cb help COMMAND`: usage, summary, details, arguments, who and where, examples."""
    lines = [usage(spec, prefix), spec.summary]
    if spec.details:
        lines += ["", spec.details]
    if spec.params:
        labels = [(_param_label(p), p.help) for p in spec.params]
        width = max(len(label) for label, _ in labels)
        lines.append("")
        lines += [f"  {label.ljust(width)}  {text}" for label, text in labels]
    lines += ["", f"Who: {who(spec)}. Where: {where(spec)}."]
    if spec.private_answer:
        lines.append(
            "The answer is given in that request's room or our direct chat; asked anywhere "
            "else, it comes by direct message."
        )
    if spec.aliases:
        lines.append("Also: " + ", ".join(f"{prefix} {alias}" for alias in spec.aliases))
    others = language_aliases(spec)
    if others:
        lines.append(
            "In other languages: " + ", ".join(f"{prefix} {word} ({code})" for code, word in others)
        )
    if spec.examples:
        lines.append("Examples:" if len(spec.examples) > 1 else "Example:")
        lines += [f"  {prefix} {example}" for example in spec.examples]
    return "\n".join(lines)


def render_topic_help(topic: str, prefix: str) -> str:
    """`!cb help TOPIC` for any TOPIC text: the command's help, a group's, or a suggestion."""
    words = topic.split()
    if words and words[0] == prefix:
        words = words[1:]
    spec = find_command(" ".join(words))
    if spec is not None:
        return render_command_help(spec, prefix)
    first = normalize_name(words[0]) if words else ""
    if first in COMMAND_GROUPS:
        return "\n\n".join(render_command_help(s, prefix) for s in COMMAND_GROUPS[first])
    if not words:
        return render_help(prefix)
    suggestion = suggest_command(words[0], words[1] if len(words) > 1 else "")
    hint = f" Did you mean {prefix} help {suggestion}?" if suggestion else ""
    return f"There is no command {shown(' '.join(words))}.{hint} Send {prefix} help for the list."


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
            what = spec.summary
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
