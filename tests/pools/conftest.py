"""Fixtures of the pool suite: a 6-decimal quote token, one InsurancePool per segment and the
BackstopPool, deployed once per session with backstop.client.pools.deploy_pools.

"The vault" here is a plain test account (`settler`) holding INCOME_ROLE and COVER_ROLE on
every pool, exactly the roles deploy_pools grants to system.vault.
"""

from types import SimpleNamespace

import pytest
from ape import project

from backstop.client.pools import deploy_pools
from backstop.core.units import quote

from pool_helpers import DECIMALS


@pytest.fixture(scope="session")
def settler(accounts):
    """Stands in for the MarginVault / LiquidationEngine (INCOME_ROLE + COVER_ROLE)."""
    return accounts[8]


@pytest.fixture(scope="session")
def lp2(accounts):
    return accounts[9]


@pytest.fixture(scope="session")
def pool_system(deployer, settler, lp, lp2, attacker, keeper, other, treasury):
    token = project.MockERC20.deploy("USD Coin (local)", "USDC", DECIMALS, sender=deployer)
    system = SimpleNamespace(token=token, vault=settler, segments={"majors": 0, "alts": 1})
    pools, backstop = deploy_pools(system, deployer)
    # the settler (vault) always holds some quote token, as the real vault does
    token.mint(settler, quote(1, DECIMALS), sender=settler)
    return SimpleNamespace(token=token, pools=pools, backstop=backstop, settler=settler)


@pytest.fixture(scope="session")
def token(pool_system):
    return pool_system.token


@pytest.fixture(scope="session")
def pool(pool_system):
    """The majors segment pool."""
    return pool_system.pools["majors"]


@pytest.fixture(scope="session")
def alts_pool(pool_system):
    return pool_system.pools["alts"]


@pytest.fixture(scope="session")
def backstop(pool_system):
    return pool_system.backstop


@pytest.fixture
def usd():
    return lambda x: quote(x, DECIMALS)
