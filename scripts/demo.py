"""Backstop's crash story on a local chain (`make demo`, i.e. `ape run demo`), in under 3 minutes.

ape-foundry starts Anvil on a random port, the script deploys the whole system with the one
deployment path (backstop.client.deploy.deploy_system), then runs
the crash story of backstop.sim.story (its docstring tells it step by step), then a second protocol
that joins the same backstop and crashes alone (story.NETWORK).

The story itself lives in backstop.sim.story (`deploy`, `Story`, `STEPS`, `run`), which the
dashboard (`make dashboard`) and its browser test reuse. A broken promise (a winner short-paid,
the other segment touched, an invariant violated) raises BrokenPromise, turned here into
SystemExit, so `make demo` fails.
"""

import time
import warnings

from ape import accounts
from ape.logging import logger

from backstop.client.speed import disable_post_transaction_trace
from backstop.reporting import display
from backstop.sim.story import NETWORK, BrokenPromise, Cast, Story, deploy, quiet_library_warnings, run


def main() -> None:
    disable_post_transaction_trace()
    started = time.perf_counter()
    # ape logs every deployment at INFO/SUCCESS ("Contract 'X' deployed to ..."): noise in the story
    with warnings.catch_warnings(), logger.at_level("ERROR"):
        quiet_library_warnings()
        display.console.rule("[bold]Backstop demo: a 40% gap in one segment")
        cast = Cast.from_accounts(accounts.test_accounts)
        try:
            story = run(Story(deploy(cast), cast))
            run(story, NETWORK)  # one backstop, two protocols: a crash in the second one stays there
        except BrokenPromise as broken:
            raise SystemExit(str(broken)) from None
    display.console.print()
    display.console.rule(f"[bold green]demo complete in {time.perf_counter() - started:.1f} s")
