"""Commands: one explicit table of declarations, a parser and help texts generated from it.

Pure: the standard library and `bot.domain` only. Handlers live in the services layer, which
maps `ParsedCommand.name` to a use case (one per entry of `COMMANDS`; `TABLE` adds the front
words such as `vote`, which the parser resolves to a command).
"""

from commands.converters import (
    Applicant,
    Choice,
    DurationArg,
    PositiveInt,
    UserId,
    WhenArg,
    Word,
)
from commands.help import (
    reference_markdown,
    render_command_help,
    render_help,
    render_topic_help,
    usage,
)
from commands.parser import MAX_COMMAND_CHARS, ParsedCommand, ParseFailure, parse
from commands.spec import (
    ANYWHERE,
    CommandSpec,
    ConversionError,
    Converter,
    Executor,
    Option,
    Place,
    Positional,
    Rest,
    Role,
    Section,
)
from commands.table import (
    COMMAND_GROUPS,
    COMMANDS,
    COMMANDS_BY_NAME,
    TABLE,
    TABLE_BY_NAME,
    find_command,
)

__all__ = [
    "ANYWHERE",
    "COMMANDS",
    "COMMANDS_BY_NAME",
    "COMMAND_GROUPS",
    "MAX_COMMAND_CHARS",
    "TABLE",
    "TABLE_BY_NAME",
    "Applicant",
    "Choice",
    "CommandSpec",
    "ConversionError",
    "Converter",
    "DurationArg",
    "Executor",
    "Option",
    "ParseFailure",
    "ParsedCommand",
    "Place",
    "Positional",
    "PositiveInt",
    "Rest",
    "Role",
    "Section",
    "UserId",
    "WhenArg",
    "Word",
    "find_command",
    "parse",
    "reference_markdown",
    "render_command_help",
    "render_help",
    "render_topic_help",
    "usage",
]
