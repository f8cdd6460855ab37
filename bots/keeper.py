"""Backstop keeper bot (silverback).

Every block: learn the accounts that deposited since the last block (vault Deposit events),
scan each segment with one `health_of` call, flag and liquidate what is liquidatable, and
fall back to auto-deleveraging against the best-ranked counterparties when the pools cannot
cover a deficit (backstop.keeper.liquidate_all).

    make deploy                                   # writes deployments/local.json
    SILVERBACK_SIGNER_ALIAS=TEST::3 BACKSTOP_DEPLOYMENT=deployments/local.json \\
        .venv/bin/silverback run bots.keeper:bot --network ethereum:local:node

On a live network use an ape account alias as the signer and that network's deployment file.
"""

import os

from ape import chain
from silverback import SilverbackBot

from backstop.client.deploy import load_system
from backstop.keeper import depositors, liquidate_all

bot = SilverbackBot(signer_required=True)


@bot.on_startup()
def join_deployment(startup_state):
    """Load the deployment and every account that deposited so far."""
    bot.state.system = load_system(os.environ.get("BACKSTOP_DEPLOYMENT", "deployments/local.json"))
    bot.state.owners = depositors(bot.state.system)
    bot.state.next_block = chain.blocks.head.number + 1
    return {"accounts": sum(len(o) for o in bot.state.owners.values())}


@bot.on_(chain.blocks)
def keep(block):
    """Watch new depositors, then liquidate every liquidatable account of every segment."""
    system = bot.state.system
    if block.number >= bot.state.next_block:
        for segment, owners in depositors(system, bot.state.next_block, block.number + 1).items():
            bot.state.owners.setdefault(segment, set()).update(owners)
        bot.state.next_block = block.number + 1
    actions = 0
    for segment, owners in bot.state.owners.items():
        report = liquidate_all(system, bot.signer, sorted(owners), segment)
        actions += len(report.actions)
    return {"block": block.number, "actions": actions}
