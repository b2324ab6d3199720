"""Migrate the conversation database.

Usage (DATABASE_URL defaults to sqlite+aiosqlite:///./data/assistant.db):

    python scripts/migrate.py upgrade          # to the newest revision (the default command)
    python scripts/migrate.py current          # print the database's revision and the newest one
    python scripts/migrate.py downgrade REV    # back to REV; "base" drops every table
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.errors import ConfigurationError
from orchestrator.memory.db import redact_url
from orchestrator.memory.migrate import (
    DEFAULT_DATABASE_URL,
    current_revision,
    downgrade_database,
    head_revision,
    upgrade_database,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Migrate the database named by DATABASE_URL.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("upgrade", help="upgrade to the newest revision")
    commands.add_parser("current", help="print the current and the newest revision")
    downgrade = commands.add_parser("downgrade", help="downgrade to a revision ('base' drops every table)")
    downgrade.add_argument("revision")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, database_url: str) -> None:
    if args.command == "downgrade":
        await downgrade_database(database_url, args.revision)
    elif args.command == "current":
        current = await current_revision(database_url)
        print(f"database: {redact_url(database_url)}")
        print(f"current:  {current or '(none)'}")
        print(f"head:     {head_revision()}")
    else:
        await upgrade_database(database_url)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        asyncio.run(run(args, database_url))
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
