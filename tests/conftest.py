"""Shared fixtures: one deployment per session, snapshot-isolated per test by ape."""

import os

import pytest
from hypothesis import HealthCheck, settings

from backstop.client.actors import fund, set_price, signed_order, trade
from backstop.core.config import SystemConfig
from backstop.client.deploy import deploy_system
from backstop.client.speed import disable_post_transaction_trace
from backstop.core.units import quote, wad

disable_post_transaction_trace()

settings.register_profile(
    "ci", max_examples=30, stateful_step_count=40, deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "soak", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")),
    stateful_step_count=int(os.environ.get("FUZZ_STEPS_PER_EXAMPLE", "200")),
    deadline=None, suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def frozen_clock(chain):
    """Blocks keep the last block's timestamp unless a test sets one (`chain.pending_timestamp`, `chain.mine`).

    Anvil's automine otherwise stamps blocks with the wall clock, so two transactions land 0 or 1 s apart depending
    on machine load, and every exact time-dependent figure (vesting, auction price, funding) becomes a flake. With
    the interval at 0 a test sees time pass only when it says so.
    """
    chain.provider.make_request("anvil_setBlockTimestampInterval", [0])
    yield
    chain.provider.make_request("anvil_removeBlockTimestampInterval", [])


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def maker(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def trader(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def keeper(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def lp(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def attacker(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def treasury(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def other(accounts):
    return accounts[7]


@pytest.fixture(scope="session")
def keeper2(accounts):
    """A second keeper, competing with `keeper`."""
    return accounts[8]


@pytest.fixture(scope="session")
def whale(accounts):
    """A second well-funded counterparty (ADL ranking, races)."""
    return accounts[9]


@pytest.fixture(scope="session")
def system(deployer, maker, trader, keeper, lp, attacker, treasury, other, keeper2, whale):
    return deploy_system(deployer, SystemConfig(treasury=treasury.address))


@pytest.fixture(scope="session")
def system18(deployer, maker, trader, keeper, lp, attacker, treasury, other, keeper2, whale):
    return deploy_system(deployer, SystemConfig(quote_decimals=18, treasury=treasury.address))


@pytest.fixture(scope="session", autouse=True)
def _deployed_up_front(system, system18):
    """Deploy both systems before any test's isolation snapshot: a session fixture first
    requested through getfixturevalue inside a test would be rolled back with that test."""
    return system, system18


@pytest.fixture(scope="session")
def liquidator(system):
    """The BackstopLiquidator of the session system (the backstop's liquidator of last resort)."""
    return system.liquidator


class Ledger:
    """Token balances of named holders, for conservation to the wei across one flow.

    `ledger = Ledger(token, pool=pool, backstop=backstop, treasury=treasury)`, run the flow, then
    `ledger.moved(pool=-x, backstop=+y)`: every named holder moved by exactly what is given (0 if
    not named), the token's supply by exactly `minted` (default 0), and the named holders
    together by exactly `minted`: name every holder a flow can reach, and the check is
    conservation to the wei (nothing created, lost, or sent anywhere else). `holds()`
    also checks that each pool-like holder's balance is exactly what it accounts for
    (managed_assets, less what it has lent out: BackstopPool.deployed).
    """

    def __init__(self, token, **holders):
        self.token = token
        self.holders = {name: (h if isinstance(h, str) else h.address) for name, h in holders.items()}
        self.contracts = {name: h for name, h in holders.items() if hasattr(h, "managed_assets")}
        self.reset()

    def reset(self):
        self.before = self.balances()
        self.supply = int(self.token.totalSupply())

    def balances(self) -> dict:
        return {name: int(self.token.balanceOf(a)) for name, a in self.holders.items()}

    def moved(self, minted: int = 0, **deltas) -> None:
        unknown = set(deltas) - set(self.holders)
        assert not unknown, f"not in the ledger: {unknown}"
        now = self.balances()
        got = {name: now[name] - self.before[name] for name in self.holders}
        want = {name: int(deltas.get(name, 0)) for name in self.holders}
        assert got == want, f"balances moved {got}, expected {want}"
        assert int(self.token.totalSupply()) - self.supply == minted
        # what left one named holder arrived at another (or was minted): conservation to the wei
        assert sum(got.values()) == minted, f"named holders moved {sum(got.values())} in all, minted {minted}"
        self.holds()
        self.reset()

    def holds(self) -> None:
        for name, c in self.contracts.items():
            lent = int(c.deployed()) if hasattr(c, "deployed") else 0
            assert int(self.token.balanceOf(c)) == int(c.managed_assets()) - lent, (
                f"{name}: balance {int(self.token.balanceOf(c))} != managed {int(c.managed_assets())} - lent {lent}")


@pytest.fixture
def ledger():
    """Ledger(token, **holders): balance deltas to the wei across a flow (see Ledger)."""
    return Ledger


@pytest.fixture(scope="session")
def vault(system):
    return system.vault


@pytest.fixture(scope="session")
def lens(system):
    return system.lens


@pytest.fixture(scope="session")
def configurator(system):
    return system.configurator


@pytest.fixture(scope="session")
def engine(system):
    return system.engine


@pytest.fixture(scope="session")
def token(system):
    return system.token


@pytest.fixture(scope="session")
def eth(system):
    return system.markets["ETH-PERP"]


@pytest.fixture(scope="session")
def btc(system):
    return system.markets["BTC-PERP"]


@pytest.fixture(scope="session")
def sol(system):
    return system.markets["SOL-PERP"]


@pytest.fixture(scope="session")
def majors(system):
    return system.segments["majors"]


@pytest.fixture(scope="session")
def alts(system):
    return system.segments["alts"]


@pytest.fixture
def usd(system):
    """Human amount -> quote units of the session's token."""
    return lambda x: quote(x, system.decimals)


@pytest.fixture
def funded(system, maker, trader, majors, alts, usd):
    """Maker and trader each hold 100,000 quote units of collateral in both segments."""
    for account in (maker, trader):
        fund(system, account, majors, usd(100_000))
        fund(system, account, alts, usd(100_000))
    return system


@pytest.fixture
def open_eth(funded, maker, trader, eth):
    """Maker long 10 ETH, trader short 10 ETH, both at 3,000."""
    trade(funded, maker, trader, eth.id, wad(10), wad(3000))
    return funded


__all__ = ["fund", "set_price", "signed_order", "trade"]
