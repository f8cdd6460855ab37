"""The LP and risk dashboard (`make dashboard`, i.e. `ape run dashboard`); docs/dashboard.md explains every figure.

    ape run dashboard                                  # a fresh Anvil, the demo's crash story, then the page
    ape run dashboard --network ethereum:local:node --deployment deployments/local-1337.json   # join `make anvil`

By default ape-foundry starts Anvil, the system is deployed with the one deployment path
(backstop.client.deploy.deploy_system) and the crash story of `make demo` runs (backstop.sim.story, plus its
epilogue: the LP asks to redeem part of its alts shares, so the redemption queue is not empty). The page is then
served on http://HOST:PORT until Ctrl-C, which also stops Anvil. With --deployment nothing is sent: the page reads
the deployment recorded in that file, on the connected network.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from backstop.client.deploy import System, is_local_network, load_system
from backstop.client.speed import disable_post_transaction_trace
from backstop.dashboard.app import create_app, serve
from backstop.reporting import display
from backstop.sim.story import EPILOGUE, STEPS, BrokenPromise, Cast, Story, deploy, quiet_library_warnings, run

CRASHED_SEGMENT = "alts"  # the story's gap is in alts: the page opens on it


def run_story() -> tuple[System, dict[str, str]]:
    """Deploy and run the crash story on the fresh chain; returns the system and a name for each actor's address."""
    cast = Cast.from_accounts(accounts.test_accounts)
    try:
        story = run(Story(deploy(cast), cast), [*STEPS, *EPILOGUE])
    except BrokenPromise as broken:
        raise SystemExit(str(broken)) from None
    names = {account.address: name for name, account in cast.actors.items()}
    names |= {cast.lp.address: "LP", cast.keeper.address: "keeper", cast.deployer.address: "deployer",
              cast.treasury.address: "treasury"}
    return story.system, names


@click.command(cls=ConnectedProviderCommand, short_help="The LP and risk dashboard (after the demo's crash story)")
@click.option("--deployment", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read this deployment file (deployments/<network>-<chain id>.json) instead of running the story.")
@click.option("--size", "size_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A size.json from `make size` (default: reports/size.json, when present).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--start-block", default=0, show_default=True, type=int, help="First block of the event history.")
def cli(network, deployment, size_path, host, port, start_block):
    disable_post_transaction_trace()
    started = time.perf_counter()
    with warnings.catch_warnings(), logger.at_level("ERROR"):  # ape's deployment log is noise here, as in the demo
        quiet_library_warnings()
        if deployment is not None:
            system, names = load_system(deployment), {}
            display.step(f"Reading the deployment in {deployment} on {network.name} (chain {chain.chain_id})")
        else:
            if not is_local_network():
                raise click.UsageError(f"the story deploys mocks: on {network.name} pass --deployment")
            display.console.rule("[bold]Backstop dashboard: the demo's crash first")
            system, names = run_story()
        app = create_app(system, size_path=size_path, start_block=start_block, names=names,
                         source=f"{network.name} {chain.provider.uri}",
                         default_segment=CRASHED_SEGMENT if CRASHED_SEGMENT in system.pools else None)
    display.console.print()
    ready = time.perf_counter() - started
    display.console.rule(f"[bold green]dashboard on http://{host}:{port}/ (ready in {ready:.0f} s; Ctrl-C stops it)")
    display.note(f"chain RPC {chain.provider.uri}: send transactions there and the page follows the new blocks")
    serve(app, host, port)
