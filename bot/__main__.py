"""`python -m bot` is the same as `consensus-bot`."""

from bot.cli import main

raise SystemExit(main())
