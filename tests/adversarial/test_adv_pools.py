"""Pool incidents: JIT LP ahead of a fee sweep, an LP running from a visible deficit, and
Drift LUNA 2022 (one segment's crash reaching another segment's pool / the whole backstop)."""

import ape
from ape import chain

from backstop.client.actors import fund, trade
from backstop.sim.agents import CrossSegmentDrainer, DeficitDodger, JitLp
from backstop.core.units import WAD, wad

from adv_helpers import deploy_hostile_market, events, pool_state



def _heavy_trading(system, maker, trader, eth, rounds=4, size=300):
    """Maker and trader open and close `size` ETH at 3,000 `rounds` times (taker: trader)."""
    for _ in range(rounds):
        trade(system, maker, trader, eth.id, wad(size), wad(3000))
        trade(system, maker, trader, eth.id, -wad(size), wad(3000))


def test_jit_lp_cannot_capture_a_fee_sweep(env, system, attacker, lp, maker, trader, eth, majors, usd, books):
    """Fees accrue (8 fills of 900,000 notional at 5 bps = 3,600); the attacker deposits
    1,000,000 (20x the honest LP) right before calling sweep_fees. The deposit itself has the
    vault sweep first, so the income is already in the pool and priced into the shares the
    attacker buys (entry price = managed assets, unvested income included). Fair outcome: the
    attacker gains nothing from income earned before it joined (P&L in [-rounding, 0] after
    the cooldown), and the honest LP, who held while it was earned, gets all of it."""
    pool = system.pools["majors"]
    _heavy_trading(system, maker, trader, eth)
    fees = sum(int(system.lens.accrued_fees(m.id)) for m in system.markets.values())
    assert fees == usd(3_600)
    aps0 = int(pool.assets_per_share())
    income = fees // 2 - fees // 2 // 10  # pool share 50%, 10% of it forwarded to the backstop
    assert int(pool.pending_income()) == income

    agent = JitLp(env, attacker, segment_label="majors", amount=usd(1_000_000))
    agent.begin()
    agent.play()
    assert agent.outcome("sweep fees").ok
    # the deposit swept before pricing: the attacker's own sweep found nothing left
    assert sum(int(system.lens.accrued_fees(m.id)) for m in system.markets.values()) == 0
    assert int(pool.pending_income()) == 0
    assert int(pool.managed_assets()) == usd(50_000) + usd(1_000_000) + income
    assert 0 < int(pool.unvested_income()) <= income
    # the attacker paid full value for the unvested income: its shares are worth at most
    # 1,000,000 * 50,000 / (50,000 + income) of managed assets' exit value right now
    assert agent.value_after_sweep <= usd(1_000_000) - usd(1_000_000) * int(pool.unvested_income()) // int(
        pool.managed_assets()) + 1
    # what it paid above the exit price is the honest LP's unvested income: the exit price
    # rises for the incumbent (it never falls without a Cover)
    assert int(pool.assets_per_share()) >= aps0
    assert agent.reasons()["redeem at once"] == "pool: no redeemable request"
    assert int(pool.maxRedeem(attacker)) == 0

    agent.exit_after_cooldown()
    assert agent.outcome("redeem after cooldown").ok
    pnl = agent.end()
    # fair: nothing gained from income earned before joining (rounding only, in the pool's favour)
    assert -2 <= pnl <= 0
    # the honest LP holds all of the income it was in the pool for
    lp_value = int(pool.convertToAssets(int(pool.balanceOf(lp))))
    assert income - 2 <= lp_value - usd(50_000) <= income
    books.check()


def test_previews_price_in_the_pending_sweep(system, seeded, attacker, maker, trader, eth, usd, books):
    """previewDeposit / previewMint / maxMint include the income the deposit's own sweep
    brings (pending_income), so they equal what deposit/mint then do (ERC-4626: a preview is
    exact and never promises more shares / fewer assets than the call gives / takes)."""
    pool = system.pools["majors"]
    _heavy_trading(system, maker, trader, eth, rounds=1)
    fees = sum(int(system.lens.accrued_fees(m.id)) for m in system.markets.values())
    assert fees == usd(900)  # 2 fills of 900,000 at 5 bps
    pending = int(pool.pending_income())
    assert pending == fees // 2 - fees // 2 // 10  # the pool's 50%, minus the backstop's 10% of it
    system.token.mint(attacker, usd(200_000), sender=attacker)
    system.token.approve(pool, 2**256 - 1, sender=attacker)
    amount = usd(100_000) + 7
    preview = int(pool.previewDeposit(amount))
    # without the pending income the preview would promise more than the deposit mints
    assert preview < amount * (int(pool.totalSupply()) + 10**6) // (int(pool.managed_assets()) + 1)
    receipt = pool.deposit(amount, attacker, sender=attacker)
    assert receipt.return_value == preview
    assert int(pool.managed_assets()) == usd(50_000) + pending + amount
    # mint: nothing pending any more, still exact
    _heavy_trading(system, maker, trader, eth, rounds=1)
    shares = 10**15 + 3
    cost = int(pool.previewMint(shares))
    assert int(pool.maxMint(attacker)) == 2**160 - 1 - int(pool.totalSupply())
    before = int(system.token.balanceOf(attacker))
    receipt = pool.mint(shares, attacker, sender=attacker)
    assert receipt.return_value == cost == before - int(system.token.balanceOf(attacker))
    books.check()


def test_lp_cannot_run_from_a_visible_deficit(env, system, attacker, attacker2, lp, maker, keeper, other, eth,
                                              majors, usd, books):
    """`other` is 10 ETH short at 3,000 with 4,000; the price gaps to 3,600 (deficit 2,017
    visible on chain). The attacker, holding half of the majors pool, requests a redeem, tries
    to redeem/withdraw at once and to move half its shares to a second account: all fail or
    keep the loss. The cover lands within the 7-day cooldown and the attacker bears its
    pro-rata part; redeeming after the cooldown pays the post-loss price."""
    pool = system.pools["majors"]
    system.token.mint(attacker, usd(50_000), sender=attacker)
    system.token.approve(pool, usd(50_000), sender=attacker)
    pool.deposit(usd(50_000), attacker, sender=attacker)
    fund(system, other, majors, usd(4_000))
    trade(system, maker, other, eth.id, wad(10), wad(3000))
    env.price("ETH-PERP", wad(3600))
    assert int(system.lens.equity(other, majors)) == -usd(2_015)  # visible

    agent = DeficitDodger(env, attacker, attacker2, segment_label="majors")
    agent.begin()
    agent.play()
    reasons = agent.reasons()
    assert reasons["request redeem"] is None
    assert reasons["redeem now"] == "pool: no redeemable request"
    assert reasons["withdraw now"] == "pool: no redeemable request"
    assert reasons["transfer shares away"] is None
    assert reasons["accomplice redeems"] == "pool: no redeemable request"

    shares_total = int(pool.totalSupply())
    attacker_shares = int(pool.balanceOf(attacker)) + int(pool.balanceOf(attacker2))
    receipt = system.engine.liquidate(other, eth.id, wad(10), sender=keeper)
    (cover,) = events(receipt, pool.Cover)
    assert cover.paid_by_pool == usd(2_017)
    pnl_mid = agent.end()
    expected_loss = usd(2_017) * attacker_shares // shares_total
    assert pnl_mid <= -expected_loss + 2  # rounding only in the pool's favour

    # after the cooldown the (clamped) request redeems at the post-loss price
    unlock = int(pool.pending_request(attacker)[1])
    chain.mine(1, timestamp=unlock)
    redeemable = int(pool.maxRedeem(attacker))
    assert redeemable == int(pool.balanceOf(attacker))  # clamped to what it kept
    pool.redeem(redeemable, attacker, attacker, sender=attacker)
    assert agent.end() <= -expected_loss + 2
    books.check()


def test_luna_crash_in_alts_never_reaches_the_majors_pool(env, system, attacker, maker, keeper, sol, majors, alts,
                                                          usd, books):
    """Attacker 1,000 SOL long at 150 (150,000 notional) with 16,000 in alts; SOL crashes to
    50 (deficit 84,000). Waterfall: the alts pool pays all it has (20,000), the backstop
    exactly its member cap (25% of 100,000), the rest is socialized by ADL against the
    profitable short. The majors pool does not move by one wei, the backstop keeps 75%."""
    majors_pool, alts_pool, backstop = system.pools["majors"], system.pools["alts"], system.backstop
    majors0 = pool_state(system, majors_pool)
    agent = CrossSegmentDrainer(env, attacker, market="SOL-PERP", size=wad(1000), entry=wad(150), crash=wad(50),
                                collateral=usd(16_000), other_segment_collateral=usd(10_000))
    agent.begin()
    agent.play()
    # the majors account is isolated: it was never at risk, so it may leave (by design)
    assert agent.outcome("withdraw other segment").ok
    assert int(system.lens.equity(attacker, alts)) == -usd(84_000)

    engine = system.engine
    # the pools cannot pay all of it: ADL (a liquidation would close it at mark and leave the
    # rest to the residual ADL; the keeper takes the shorter path)
    receipt = engine.deleverage(attacker, sol.id, maker, wad(1000), sender=keeper)
    (dl,) = events(receipt, engine.Deleveraged)
    (cover,) = events(receipt, alts_pool.Cover)
    (draw,) = events(receipt, backstop.Draw)
    assert cover.paid_by_pool == usd(20_000) and cover.paid_by_backstop == usd(25_000) and cover.unpaid == 0
    assert draw.member == alts_pool.address and draw.paid == usd(25_000)
    assert dl.socialized_loss == usd(84_000) - usd(45_000)
    assert int(system.vault.collateral(attacker, alts)) == 0
    assert pool_state(system, majors_pool) == majors0
    assert int(backstop.totalAssets()) == usd(75_000)
    assert int(alts_pool.totalAssets()) == 0
    pnl = agent.end()
    assert pnl == -usd(16_000)
    # a second crash the same day: the backstop cap is spent, nothing more leaves it
    assert int(backstop.draw_capacity(alts_pool)) == 0
    books.check()


def test_reentrant_income_cannot_slip_into_a_deposit_or_redeem(deployer, treasury, attacker, attacker2):
    """notify_income is the one @reentrant entry of an InsurancePool (the vault's sweep inside
    deposit calls it back). A hostile quote token holding INCOME_ROLE (worst case: in the
    system only the vault holds it) calls notify_income from inside the pool's own token
    transfers. Inside a deposit's pull the extra income breaks the exact balance check and the
    whole deposit reverts, so no income can land between pricing and minting; inside a
    redeem's payout (after every write) it is booked as ordinary income and the redeemer gets
    exactly the price quoted before it."""
    u, big = 10**6, 2**256 - 1
    token, vault, pool, backstop = deploy_hostile_market(deployer, treasury)
    pool.grantRole(pool.INCOME_ROLE(), token, sender=deployer)
    token.mint(token, 1_000 * u, sender=deployer)
    token.execute(token, token.approve.encode_input(pool.address, big), sender=attacker)
    token.mint(attacker2, 10_000 * u, sender=attacker2)
    token.approve(pool, big, sender=attacker2)
    pool.deposit(1_000 * u, attacker2, sender=attacker2)
    reentrant_income = pool.notify_income.encode_input(10 * u)

    # inside a deposit's pull: the deposit reverts as a whole
    token.arm(pool, reentrant_income, sender=attacker)
    with ape.reverts("pool: fee-on-transfer token"):
        pool.deposit(100 * u, attacker2, sender=attacker2)
    assert int(token.callbacks()) == 0  # reverted with the deposit, callback included

    # inside a redeem's payout: booked as income after the redeem's own writes (the token is
    # still armed: the reverted deposit rolled the hook's disarm back too)
    shares = int(pool.balanceOf(attacker2)) // 2
    pool.request_redeem(shares, sender=attacker2)
    quoted = int(pool.previewRedeem(shares))
    managed = int(pool.managed_assets())
    before = int(token.balanceOf(attacker2))
    receipt = pool.redeem(shares, attacker2, attacker2, sender=attacker2)
    assert int(token.callbacks()) == 1 and token.last_success() is True
    assert receipt.return_value == quoted == int(token.balanceOf(attacker2)) - before
    assert int(pool.managed_assets()) == managed - quoted + 9 * u  # 10% of the income went to the backstop
    assert int(token.balanceOf(pool)) == int(pool.managed_assets())
