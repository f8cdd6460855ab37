"""Fixtures of the incident replays: an attacker's second and third account, seeded pools and
the conservation checks every replay ends with.

Pools are seeded by the honest `lp`: majors 50,000, alts 20,000, backstop 100,000 (so the
backstop's per-segment draw cap is 25,000 a day). Maker and trader hold 100,000 in both
segments (`funded`). `keeper` holds 100,000 in both segments.
"""

from __future__ import annotations

import pytest
from adv_helpers import Books

from backstop.client.actors import fund
from backstop.core.units import WAD
from backstop.sim.agents import Env


@pytest.fixture(scope="session")
def attacker2(accounts):
    return accounts[8]


@pytest.fixture(scope="session")
def attacker3(accounts):
    return accounts[9]


@pytest.fixture(scope="session")
def everyone(accounts):
    return [accounts[i] for i in range(10)]


@pytest.fixture
def seeded(funded, system, lp, keeper, majors, alts, usd):
    """funded + pools seeded by the honest LP + a funded honest keeper."""
    for target, amount in (
        (system.pools["majors"], usd(50_000)),
        (system.pools["alts"], usd(20_000)),
        (system.backstop, usd(100_000)),
    ):
        system.token.mint(lp, amount, sender=lp)
        system.token.approve(target, amount, sender=lp)
        target.deposit(amount, lp, sender=lp)
    fund(system, keeper, majors, usd(100_000))
    fund(system, keeper, alts, usd(100_000))
    return system


@pytest.fixture
def env(seeded, deployer, keeper, maker, trader):
    return Env(system=seeded, feed_admin=deployer, keepers=[keeper], counterparties=[maker, trader])


@pytest.fixture
def books(system, everyone):
    return Books(system, everyone)
