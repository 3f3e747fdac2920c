"""Developer tooling: a throwaway local Synapse, the `consensus-bot demo` story and simulated
members (real Matrix clients) for the real-homeserver tests, the demo and the benchmarks.

Production code never imports this package. The one exception is `bot/cli.py`, whose `demo`
subcommand imports `bot.devtools.demo` inside the function that runs it, so `consensus-bot run`
never loads it; `tests/unit/test_layering.py` enforces both rules.

- `synapse`: `LocalSynapse`, a loopback-only Synapse from PyPI with its own config and users;
- `demo`: `run_demo`, one participation request walked from filing to outcome;
- `sim_member`: `SimMember`, a member's client that syncs and remembers what it saw.
"""
