"""Backstop forecaster bot (silverback): every hour, fit a GARCH(1,1) on each configured market's oracle
returns (RiskParams' VolatilityUpdated events) and push the one-step forecast when it asks for more margin
than the realized estimate (backstop.keeper.forecaster; docs/margin.md). The forecast can only raise margin,
within the cap and the rate limit, and decays back: a wrong fit costs traders margin, never the pools.

    BACKSTOP_DEPLOYMENT=deployments/local-1337.json RISK_PARAMS=0x... SILVERBACK_SIGNER_ALIAS=TEST::4 \\
        .venv/bin/silverback run bots.forecaster:bot --network ethereum:local:node

The signer needs RiskParams' FORECASTER_ROLE.
"""

import os

from ape import project
from silverback import SilverbackBot

from backstop.client.deploy import load_system
from backstop.keeper.forecaster import garch_forecast, oracle_returns, push_if_higher

bot = SilverbackBot(signer_required=True)
DURATION = int(os.environ.get("FORECAST_DURATION", str(3 * 86_400)))


@bot.on_startup()
def join(startup_state):
    bot.state.system = load_system(os.environ.get("BACKSTOP_DEPLOYMENT", "deployments/local-1337.json"))
    bot.state.risk = project.RiskParams.at(os.environ["RISK_PARAMS"])
    return {"markets": len(bot.state.system.markets)}


@bot.cron("0 * * * *")
def forecast(time):
    """One forecast per configured market with enough history; a market that cannot be fitted is skipped."""
    pushed = {}
    for label, market in bot.state.system.markets.items():
        returns, spacing = oracle_returns(bot.state.risk, market.id)
        if len(returns) < 30 or spacing <= 0:
            continue
        pushed[label] = push_if_higher(bot.state.risk, market.id, garch_forecast(returns, spacing), bot.signer,
                                       DURATION)
    return pushed
