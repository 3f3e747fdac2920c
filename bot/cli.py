"""The command line: run, check-config, init, members import, export, publish, backup,
migrate-storage, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from bot.config import Config, ConfigError, GroupEntry, load_config, render_config
from storage.backend import Backend

EXIT_CONFIG = 2  # the configuration is missing or invalid
EXIT_USAGE = 2  # a usage error, or a file that cannot be read
_EXPORT_EPILOG = """\
exit codes of export --verify FILE [--previous EARLIER] [--head HASH]:
  0  the file is intact. Without --head that only means self-consistent: whoever edits
     a record can recompute every hash. With --head, its head is also HASH (from the
     outcome message in the request room, or the end of the published minutes), which
     proves nobody rewrote it.
  1  it does not verify: changed, reformatted, not the exported JSON, or another head
     than HASH; or it does not continue EARLIER (the segment before it: chained to its
     head, and, for the same decision, the same inputs counted); the problems are listed
  2  usage error (e.g. HASH is not 64 hex digits), or FILE cannot be read

exit codes of export: 0 printed, 1 the request cannot be exported, 2 configuration problem."""
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _head(value: str) -> str:
    """`--head`: a full SHA-256, 64 hex digits (either case)."""
    if not _HEX64.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a head: expected the full SHA-256, 64 hex digits"
        )
    return value.lower()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consensus-bot",
        description="A Matrix bot that admits new participants by rough consensus.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the bot")
    run.add_argument("--config", type=Path, default=Path("config.toml"), help="config file")
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    run.add_argument(
        "--reset-cross-signing",
        action="store_true",
        help="replace the bot's cross-signing identity when its key file is missing or does "
        "not match the homeserver (people who verified the bot see the change)",
    )
    check = sub.add_parser("check-config", help="validate and print the effective config")
    check.add_argument("--config", type=Path, default=Path("config.toml"), help="config file")
    check.add_argument(
        "--offline", action="store_true", help="only the file: do not contact the homeserver"
    )
    export = sub.add_parser(
        "export",
        help="print the decision record of a request, or verify an exported one",
        description="Print the decision record of a request, or verify an exported JSON one.",
        epilog=_EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--config", type=Path, default=Path("config.toml"), help="config file")
    export.add_argument(
        "--request", type=int, default=None, help="request number (default: newest)"
    )
    export.add_argument(
        "--group",
        metavar="ID",
        default=None,
        help="the group whose request it is (default: the config's first group)",
    )
    export.add_argument("--format", choices=("json", "csv", "md"), default="json")
    export.add_argument(
        "--verify",
        type=Path,
        default=None,
        metavar="FILE",
        help="check an exported JSON record instead (see the exit codes below)",
    )
    export.add_argument(
        "--previous",
        type=Path,
        default=None,
        metavar="EARLIER",
        help="with --verify: the request's segment before FILE, exported then; FILE must "
        "continue it, and a later segment of the same decision count exactly what it counted",
    )
    export.add_argument(
        "--head",
        type=_head,
        default=None,
        metavar="HASH",
        help="with --verify: the published head to compare with (64 hex digits)",
    )
    publish = sub.add_parser(
        "publish",
        help="write the public static site of the decisions",
        description=(
            "Write a static site (plain files, no scripts) of every decided request: an index, "
            "one page per decision with its frozen record files and head, index.json and an "
            "Atom feed. Written to a temporary directory beside DIR, then renamed into place. "
            "Exit codes: 0 written, 1 it could not be written, 2 configuration problem."
        ),
    )
    publish.add_argument("--config", type=Path, default=Path("config.toml"), help="config file")
    publish.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the site's directory"
    )
    backup = sub.add_parser("backup", help="write a consistent copy of the database")
    backup.add_argument("--config", type=Path, default=Path("config.toml"), help="config file")
    backup.add_argument("dest", type=Path, help="the new backup file")
    init = sub.add_parser(
        "init",
        help="write a commented config from a few questions",
        description=(
            "Write a commented config file from a few questions; every question has a flag, "
            "and with --yes nothing is asked. The bot's password or access token is never "
            "written into the config: typed (or piped with --password-file -) it is kept "
            "beside it, readable by you only; an existing --password-file is referred to. "
            "The result is checked like check-config does; problems are listed with their "
            "key and exit code 2. No file is ever overwritten."
        ),
    )
    init.add_argument("--config", type=Path, default=Path("config.toml"), help="the file to write")
    init.add_argument("--homeserver", metavar="URL", help="the homeserver's URL")
    init.add_argument("--user-id", metavar="MXID", help="the bot's Matrix user ID")
    init.add_argument("--main-room", metavar="ROOM", help="the main room's ID or alias")
    init.add_argument(
        "--chair", action="append", default=[], metavar="MXID", help="a chair (repeat for more)"
    )
    init.add_argument("--name", help="the group's name")
    init.add_argument("--timezone", metavar="ZONE", help="the group's IANA time zone")
    secret = init.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-file",
        type=Path,
        metavar="PATH",
        help="a file holding the bot's password ('-': read it from standard input)",
    )
    secret.add_argument(
        "--access-token-file",
        type=Path,
        metavar="PATH",
        help="a file holding an access token of the bot ('-': from standard input)",
    )
    init.add_argument(
        "--yes", "-y", action="store_true", help="ask nothing: take every answer from the flags"
    )
    members = sub.add_parser("members", help="manage the roster from the command line")
    members_sub = members.add_subparsers(dest="members_command", required=True, metavar="ACTION")
    roster_import = members_sub.add_parser(
        "import",
        help="add or update members from a CSV file",
        description=(
            "Add or update members from a CSV file whose header names the columns "
            "user_id,stakeholder,region (and optionally country, ignored for now). Every row "
            "is checked first; if any is invalid, each problem is listed with its line number, "
            "nothing is written and the exit code is 2. Otherwise all rows are written in one "
            "transaction."
        ),
    )
    roster_import.add_argument(
        "--config", type=Path, default=Path("config.toml"), help="config file"
    )
    roster_import.add_argument(
        "--dry-run", action="store_true", help="check the rows and show what would change"
    )
    roster_import.add_argument(
        "--group",
        metavar="ID",
        default=None,
        help="the group whose roster it is (default: the config's first group)",
    )
    roster_import.add_argument("file", type=Path, metavar="FILE.csv", help="the roster to import")
    migrate = sub.add_parser(
        "migrate-storage",
        help="copy a SQLite database into an empty PostgreSQL one",
        description=(
            "Copy every table of a SQLite database (the bot stopped) into an empty PostgreSQL "
            "database in one transaction, then verify every frozen decision record there. "
            "Exit codes: 0 copied and verified, 1 refused or a record does not verify, "
            "2 usage error."
        ),
    )
    migrate.add_argument(
        "--from", dest="source", required=True, metavar="sqlite:PATH", help="the SQLite file"
    )
    migrate.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="postgresql:DSN",
        help="the PostgreSQL database, e.g. postgresql:postgresql://bot@db/consensus",
    )
    demo = sub.add_parser("demo", help="walk one request through a throwaway local homeserver")
    demo.add_argument("--keep-running", action="store_true", help="stay up to look around")
    demo.add_argument("--workdir", type=Path, default=None, help="where to keep the demo files")
    demo.add_argument(
        "--language",
        default="en",
        metavar="CODE",
        help="the group's language: ar, zh_Hans, en, fr, ru, es (default en)",
    )
    return parser


def _load(path: Path) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.issues)} problem(s) in the configuration:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue.path}: {issue.message}", file=sys.stderr)
        return None


# The database cannot be used (not SQLite, damaged, newer, a directory, not writable): like a
# bad config, nothing will change until the operator acts, so a supervisor should not loop.
EXIT_DATABASE = 2


def _run(config_path: Path, verbose: bool, reset_cross_signing: bool = False) -> int:
    from bot.app import App
    from bot.domain.errors import OperatorError

    config = _load(config_path)
    if config is None:
        return EXIT_CONFIG
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # nio logs every request at INFO; keep the bot's own log readable.
    logging.getLogger("nio").setLevel(logging.WARNING)
    app = App(config, reset_cross_signing=reset_cross_signing)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, app.stop)
        await app.run()

    try:
        asyncio.run(main())
    except OperatorError as exc:  # start-up, database, keys, lock, login: the operator's move
        print(f"consensus-bot: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def _check_config(config_path: Path, offline: bool) -> int:
    config = _load(config_path)
    if config is None:
        return EXIT_CONFIG
    print(render_config(config))
    print(f"# {config_path}: the file is valid", file=sys.stderr)
    from storage.keys import key_problem

    problem = key_problem(config.storage.path)
    if problem:
        print(f"# PROBLEM  storage.path: {problem}", file=sys.stderr)
        return 1
    if offline:
        return 0
    from bot.matrix.preflight import preflight

    checks = asyncio.run(preflight(config))
    for check in checks:
        mark = "ok" if check.ok else "PROBLEM"
        print(f"# {mark:>7}  {check.name}: {check.detail}", file=sys.stderr)
    return 0 if all(c.ok for c in checks) else 1


@asynccontextmanager
async def _database(config: Config) -> AsyncIterator[Backend]:
    """The bot's database (whichever backend), opened and migrated for a one-off command."""
    from storage.factory import open_database

    async with open_database(config.storage) as db:
        yield db


def _migrate_storage(source: str, target: str) -> int:
    """`migrate-storage --from sqlite:PATH --to postgresql:DSN`."""
    from storage.database import DatabaseError
    from storage.dsn import DsnError, parse_dsn
    from storage.lock import AlreadyRunning
    from storage.migrate import MigrationError, migrate_storage

    if not source.startswith("sqlite:") or len(source) == len("sqlite:"):
        print("consensus-bot: --from must be sqlite:PATH", file=sys.stderr)
        return EXIT_USAGE
    dsn = target.removeprefix("postgresql:")
    try:
        if not target.startswith("postgresql:"):
            raise DsnError("must be postgresql:DSN, e.g. postgresql:postgresql://bot@db/cb")
        parse_dsn(dsn)
    except DsnError as exc:  # quotes no part of the DSN, which may hold a password
        print(f"consensus-bot: --to {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = asyncio.run(migrate_storage(Path(source.removeprefix("sqlite:")), dsn))
    except (MigrationError, DatabaseError, AlreadyRunning) as exc:
        print(f"consensus-bot: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


def _read_record(path: Path, head: str | None) -> tuple[str | None, list[str]]:
    """(text, problems) of an exported JSON record; OSError when it cannot be read."""
    from bot.domain.record import verify_json

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [f"not UTF-8 text (byte {exc.start}): use the file exactly as exported"]
    return text, verify_json(text, head=head)


def _verify(path: Path, head: str | None, previous: Path | None = None) -> int:
    """`export --verify FILE [--previous EARLIER] [--head HASH]`: exit 0 intact, 1 problems,
    2 unreadable."""
    import json

    from bot.domain.record import verify_segments

    try:
        text, problems = _read_record(path, head)
        earlier = None if previous is None else _read_record(previous, None)
    except OSError as exc:
        print(f"consensus-bot: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if earlier is not None:
        earlier_text, earlier_problems = earlier
        problems += [f"{previous}: {p}" for p in earlier_problems]
        if text is not None and earlier_text is not None and not problems:
            # Across segments: the later one must continue the earlier, and a decision's
            # counts are carried unchanged (nothing surfacing after it counts).
            problems = verify_segments(json.loads(earlier_text), json.loads(text))
    if problems:
        print(f"{path}: the record does NOT verify:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    assert text is not None
    found = json.loads(text)["head"]
    if head is None:
        print(
            f"{path}: self-consistent: the chain is intact, but it was NOT compared with a "
            "published head; only --head HASH (from the outcome message in the request room "
            "or the published minutes) proves nobody rewrote it.\n"
            f"head: {found}"
        )
    else:
        print(f"{path}: intact, and its head is the published {found}: nobody rewrote it")
    if previous is not None:
        print(f"{path}: continues {previous}, and carries the counts of the decision it continues")
    return 0


def _group_entry(config: Config, group_id: str | None) -> GroupEntry | None:
    """The group `--group` names (the first without it); None, said, when unknown."""
    try:
        return config.entry(group_id)
    except KeyError as exc:
        print(f"consensus-bot: {exc.args[0]}", file=sys.stderr)
        return None


def _export(config_path: Path, request: int | None, fmt: str, group_id: str | None) -> int:
    from bot.services.export import ExportError, export_record, render
    from storage.database import DatabaseError
    from storage.repo import Repository

    config = _load(config_path)
    if config is None:
        return EXIT_CONFIG
    group = _group_entry(config, group_id)
    if group is None:
        return EXIT_USAGE

    async def run() -> str:
        async with _database(config) as db, db.transaction() as tx:
            repo = Repository(tx)
            if request is None:
                newest = await repo.requests(group.id)
                if not newest:
                    raise ExportError(f"group {group.id} has no requests yet")
                req = newest[0]
                print(f"# exporting request #{req.number} (the newest)", file=sys.stderr)
            else:
                found = await repo.request_numbered(group.id, request)
                if found is None:
                    raise ExportError(f"group {group.id} has no request #{request}")
                req = found
            record = await export_record(
                repo,
                req.id,
                group_name=group.name,
                quorum=group.process.quorum,
                skew_ms=group.process.clock_skew_ms,
                appeal_window_ms=group.process.appeal_window_ms,
                tidier=config.matrix.user_id,
            )
        return render(record, fmt)  # type: ignore[arg-type]

    try:
        sys.stdout.write(asyncio.run(run()))
    except DatabaseError as exc:
        print(f"consensus-bot: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except ExportError as exc:
        print(f"consensus-bot: {exc}", file=sys.stderr)
        return 1
    return 0


def _publish(config_path: Path, out: Path) -> int:
    """`publish --config PATH --out DIR`: write the public site of the decisions."""
    import time

    from bot.i18n.catalog import Translator
    from bot.services.publish import SiteGroup, site_files, write_site
    from storage.database import DatabaseError
    from storage.repo import Repository

    config = _load(config_path)
    if config is None:
        return EXIT_CONFIG
    languages = tuple({g.language for g in config.entries})
    translator = Translator.load(languages)  # each group's site is in its language
    groups = [SiteGroup(g.id, g.name, translator.get(g.language)) for g in config.entries]

    async def run() -> dict[str, str]:
        async with _database(config) as db, db.transaction() as tx:
            return await site_files(
                Repository(tx),
                groups=groups,
                options=config.publish.options(),
                now_ms=int(time.time() * 1000),
            )

    try:
        files = asyncio.run(run())
        write_site(files, out)
    except DatabaseError as exc:
        print(f"consensus-bot: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except OSError as exc:
        print(f"consensus-bot: cannot write the site to {out}: {exc}", file=sys.stderr)
        return 1
    pages = sum(1 for name in files if "decisions/" in name and name.endswith("index.html"))
    print(f"{out}: published {pages} decision(s); open {out / 'index.html'}")
    return 0


def _backup(config_path: Path, dest: Path) -> int:
    from storage.backup import BackupError, copy_crypto_store
    from storage.database import DatabaseError

    config = _load(config_path)
    if config is None:
        return EXIT_CONFIG

    async def run() -> None:
        async with _database(config) as db:
            await db.backup(dest)

    failed = False
    try:
        asyncio.run(run())
    except DatabaseError as exc:  # with PostgreSQL: pg_dump's job, an old crypto store ours
        print(f"consensus-bot: {exc}", file=sys.stderr)
        failed = True
    else:
        print(f"backup written to {dest}")
    store = config.matrix.crypto_store
    if config.matrix.encryption != "off" and store.is_dir() and any(store.glob("*.db")):
        # The device's keys live in the database (the backup has them); only a store an
        # earlier version kept on disk, not yet moved in by a start, is copied beside it:
        # without it a restored bot would be a new device members' clients distrust.
        crypto_dest = dest.with_name(dest.name + ".crypto")
        try:
            copy_crypto_store(store, crypto_dest)
        except BackupError as exc:
            print(f"consensus-bot: {exc}", file=sys.stderr)
            return 1
        print(f"crypto store (device and cross-signing keys) written to {crypto_dest}")
    return 1 if failed else 0


def _init(args: argparse.Namespace) -> int:
    """`init`: the flags and the terminal, wired to `bot.init_config.run_init`."""
    import getpass

    from bot.init_config import (
        DEFAULT_NAME,
        DEFAULT_TIMEZONE,
        Answers,
        Dialogue,
        run_init,
        split_chairs,
    )

    chairs = tuple(chair for text in args.chair for chair in split_chairs(text))
    given = Answers(
        homeserver=args.homeserver or "",
        user_id=args.user_id or "",
        main_room=args.main_room or "",
        chairs=chairs,
        name=args.name or DEFAULT_NAME,
        timezone=args.timezone or DEFAULT_TIMEZONE,
    )
    flags = {
        "homeserver": args.homeserver,
        "user_id": args.user_id,
        "main_room": args.main_room,
        "chairs": chairs,
    }
    asked = [name for name, value in flags.items() if not value]
    if not args.yes:  # the others have defaults, offered when asking
        asked += [name for name in ("name", "timezone") if getattr(args, name) is None]
    dialogue = Dialogue(
        ask=input,
        ask_hidden=getpass.getpass,
        say=lambda message: print(message, file=sys.stderr),
        read_stdin=sys.stdin.read,
    )
    return run_init(
        args.config,
        given,
        secret=None,
        secret_file=args.password_file or args.access_token_file,
        interactive=not args.yes,
        dialogue=dialogue,
        asked=asked,
        secret_kind="access_token" if args.access_token_file is not None else "password",
    )


def _members_import(config_path: Path, file: Path, dry_run: bool, group_id: str | None) -> int:
    """`members import FILE.csv [--dry-run]`: 0 imported (or would be), 2 invalid rows or
    config or unreadable file, 2 database problem."""
    import time

    from bot.domain.roster_import import (
        Existing,
        PlannedRow,
        parse_roster,
        plan_import,
        summarize,
    )
    from storage.database import DatabaseError
    from storage.repo import Repository

    config = _load(config_path)
    if config is None:
        return EXIT_CONFIG
    group = _group_entry(config, group_id)
    if group is None:
        return EXIT_USAGE
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        print(f"consensus-bot: cannot read {file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except UnicodeDecodeError as exc:
        print(f"{file}: not UTF-8 text (byte {exc.start}); save it as UTF-8", file=sys.stderr)
        return EXIT_USAGE
    parsed = parse_roster(text)
    if not parsed.ok:
        print(f"{file}: {len(parsed.problems)} problem(s); nothing was imported:", file=sys.stderr)
        for problem in parsed.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    if dry_run and config.storage.backend == "sqlite" and not config.storage.path.exists():
        # A dry run leaves no trace: no database is created just to be found empty.
        plan = plan_import(parsed.rows, {})
        for planned in plan:
            print(planned.describe())
        print(f"{file}: dry run, {config.storage.path} does not exist yet: {summarize(plan)}")
        return 0

    async def run() -> list[PlannedRow]:
        async with _database(config) as db, db.transaction() as tx:
            repo = Repository(tx)
            existing: dict[str, Existing] = {}
            for row in parsed.rows:
                member = await repo.member(group.id, row.user_id)
                if member is not None:
                    existing[row.user_id] = Existing(
                        member.stakeholder, member.region, member.active
                    )
            plan = plan_import(parsed.rows, existing)
            if not dry_run:
                now = int(time.time() * 1000)
                for row in parsed.rows:
                    await repo.upsert_member(
                        group.id,
                        row.user_id,
                        row.stakeholder,
                        row.region,
                        now,
                        f"import:{file.name}",
                    )
            return plan

    try:
        plan = asyncio.run(run())
    except DatabaseError as exc:
        print(f"consensus-bot: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    for planned in plan:
        print(planned.describe())
    if dry_run:
        print(f"{file}: dry run, nothing written: {summarize(plan)}")
    else:
        print(
            f"{file}: imported {len(plan)} row(s) in one transaction: {summarize(plan, done=True)}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `consensus-bot` and `python -m bot`."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args.config, args.verbose, args.reset_cross_signing)
    if args.command == "check-config":
        return _check_config(args.config, args.offline)
    if args.command == "export":
        if args.head is not None and args.verify is None:
            parser.error("--head goes with --verify FILE")
        if args.previous is not None and args.verify is None:
            parser.error("--previous goes with --verify FILE")
        if args.verify is not None:
            return _verify(args.verify, args.head, args.previous)
        return _export(args.config, args.request, args.format, args.group)
    if args.command == "publish":
        return _publish(args.config, args.out)
    if args.command == "backup":
        return _backup(args.config, args.dest)
    if args.command == "init":
        return _init(args)
    if args.command == "members":
        return _members_import(args.config, args.file, args.dry_run, args.group)
    if args.command == "migrate-storage":
        return _migrate_storage(args.source, args.target)
    if args.command == "demo":
        from bot.devtools.demo import run_demo
        from bot.i18n.catalog import LANGUAGES, normalize_code

        language = normalize_code(args.language)
        if language is None:
            print(
                f"unknown language {args.language!r}: one of {', '.join(LANGUAGES)}",
                file=sys.stderr,
            )
            return 2
        return int(
            run_demo(keep_running=args.keep_running, workdir=args.workdir, language=language)
        )
    return 2
