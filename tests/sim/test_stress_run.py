"""One stress run on the test chain (the session `system`), with the figures it must record."""

import pytest
from ape import chain

from backstop.client.deploy import deploy_system
from backstop.sim.paths import gap
from backstop.sim.stress import MARGIN_MODELS, RunSpec, make_cast, run

# Pools deep enough to pay every deficit of these runs: no ADL, so winners must be paid in full.
DEEP = dict(n_traders=4, pool_deposit=400_000, backstop_deposit=400_000, leverage=(5.0, 9.0), long_share=1.0)


@pytest.fixture(scope="module")
def crash_run(system):
    """One run shared by the tests that read its figures (a run takes ~15 s)."""
    spec = RunSpec(path=gap(0.4, before=1, after=3, drift=-0.01), latency=300, seed=1, **DEEP)
    return run(spec, system=system, cast=make_cast(spec))


def test_a_40pct_gap_with_a_slow_keeper_leaves_bad_debt_the_pools_pay(crash_run):
    r = crash_run
    assert r.gap == 0.4 and r.latency == 300
    # every trader is long at >= 5x: a -40% gap takes them all below zero
    assert r.liquidations > 0
    assert r.bad_debt > 0
    assert r.bad_debt_paid == r.bad_debt and r.bad_debt_unpaid == 0
    assert r.adl_events == 0 and r.pools_could_pay
    assert r.pool_drawdown > 0 and r.pool_nav_min < r.pool_nav_start
    assert r.winners >= 1  # the maker, short against every long
    assert r.winners_unpaid == 0
    assert r.invariant_errors == 0, r.first_error


def test_the_nav_series_starts_full_and_ends_at_the_minimum(crash_run):
    r = crash_run
    starts = [sum(n[1:]) for n in r.nav]
    assert starts[0] == r.pool_nav_start
    assert min(starts) == r.pool_nav_min
    assert [n[0] for n in r.nav] == sorted(n[0] for n in r.nav)  # time only moves forward
    assert set(r.row()) >= {"bad_debt", "backstop_draws", "adl_events", "keeper_profit", "winners_unpaid"}
    assert "nav" not in r.row()


def test_a_zero_gap_run_has_no_bad_debt(system):
    spec = RunSpec(path=gap(0.0, before=1, after=2), latency=0, seed=1, **DEEP)
    r = run(spec, system=system, cast=make_cast(spec))
    assert r.gap == 0.0
    assert r.bad_debt == 0 and r.liquidations == 0 and r.adl_events == 0 and r.backstop_draws == 0
    assert r.pool_drawdown == 0
    assert r.winners_unpaid == 0
    assert r.invariant_errors == 0, r.first_error


def test_a_vol_margin_run_pokes_risk_params_and_still_pays_winners(deployer):
    """The margin-model axis: the same crash on a deployment whose margin follows volatility."""
    start = chain.blocks.head.number
    vol_system = deploy_system(deployer, MARGIN_MODELS["vol"]())
    spec = RunSpec(path=gap(0.4, before=1, after=3, drift=-0.01), latency=0, seed=1, margin_model="vol", **DEEP)
    r = run(spec, system=vol_system, cast=make_cast(spec))
    assert r.margin_model == "vol" and not r.failed
    folded = list(vol_system.risk.VolatilityUpdated.range(start, chain.blocks.head.number + 1))
    assert len(folded) >= 2  # the keeper poked before its passes
    assert r.winners_unpaid == 0
    assert r.invariant_errors == 0, r.first_error


def test_the_production_keeper_wins_the_same_crash(system):
    """keeper="bot": backstop.keeper.Keeper (batched sends, receipts, waterfall tail) instead of liquidate_all."""
    spec = RunSpec(path=gap(0.4, before=1, after=3, drift=-0.01), latency=300, seed=1, keeper="bot", **DEEP)
    r = run(spec, system=system, cast=make_cast(spec))
    assert not r.failed and r.label.endswith("/bot")
    assert r.liquidations > 0 and r.bad_debt > 0
    assert r.bad_debt_paid == r.bad_debt and r.bad_debt_unpaid == 0 and r.adl_events == 0
    assert r.winners_unpaid == 0
    assert r.invariant_errors == 0, r.first_error
