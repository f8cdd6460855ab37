"""BackstopPool draw caps: the per-member cap is recomputed at every draw from the backstop at
the window's start (managed assets now + drawn in the window), a global cap bounds all members
together per window, both windows roll over, and the global cap's setter checks its input."""

import ape

from pool_helpers import DAY, MISSING_ROLE, deposit, events, next_tx_at


def _draw(pool, backstop, settler, amount):
    """A cover by an empty segment pool: all of it is asked of the backstop. Returns the
    receipt and the Draw event."""
    receipt = pool.cover(amount, sender=settler)
    [draw] = events(receipt, backstop, "Draw")
    return receipt, draw


def test_dust_draw_pins_nothing(pool, backstop, token, settler, lp, lp2, usd):
    """A 1-wei draw opens majors' window on a 1,000 backstop. The backstop then grows to 5,000
    within the same window: the next draw gets 25% of the grown backstop, not of the 1,000."""
    deposit(token, backstop, lp, usd(1000))
    receipt, dust = _draw(pool, backstop, settler, 1)
    assert dust.paid == 1
    start = receipt.timestamp
    deposit(token, backstop, lp2, usd(4000) + 1)  # the backstop now holds 5,000 again after the dust
    assert backstop.draw_state(pool) == (start, usd(5000) // 4, 1)
    assert backstop.draw_capacity(pool) == usd(5000) // 4 - 1
    _, big = _draw(pool, backstop, settler, usd(3000))
    assert (big.requested, big.paid) == (usd(3000), usd(5000) // 4 - 1)
    # the member drew exactly its cap of the (grown) backstop in this window, dust included
    assert backstop.draw_state(pool) == (start, usd(5000) // 4, usd(5000) // 4)
    assert backstop.draw_capacity(pool) == 0
    _, nothing = _draw(pool, backstop, settler, usd(1))
    assert nothing.paid == 0


def test_cap_does_not_shrink_with_the_windows_own_draws(pool, backstop, token, settler, lp, usd):
    """Three draws in one window on a 1,000 backstop pay 100 + 100 + 50: 25% of the 1,000 the
    window started with, not 25% of what is left after each draw."""
    deposit(token, backstop, lp, usd(1000))
    paid = [_draw(pool, backstop, settler, usd(100))[1].paid for _ in range(3)]
    assert paid == [usd(100), usd(100), usd(50)]
    assert backstop.totalAssets() == usd(750)


def test_two_members_never_exceed_the_global_cap(pool, alts_pool, backstop, token, settler, lp, deployer, usd):
    """Member caps 40%, global cap 50% of a 1,000 backstop: majors draws its 400, alts only the
    100 left under the global cap (not its own 40% of 600 = 240); together 500 = the global cap."""
    deposit(token, backstop, lp, usd(1000))
    backstop.set_member(pool, 4000, sender=deployer)
    backstop.set_member(alts_pool, 4000, sender=deployer)
    backstop.set_draw_window(DAY, sender=deployer)
    assert backstop.global_draw_cap_bps() == 5000
    receipt, majors_draw = _draw(pool, backstop, settler, usd(1000))
    assert majors_draw.paid == usd(400)
    start = receipt.timestamp
    assert backstop.global_draw_state() == (start, usd(500), usd(400))
    assert backstop.draw_capacity(alts_pool) == usd(100)  # the global room, below alts' own 240
    _, alts_draw = _draw(alts_pool, backstop, settler, usd(1000))
    assert (alts_draw.member, alts_draw.paid) == (alts_pool.address, usd(100))
    assert backstop.global_draw_state() == (start, usd(500), usd(500))
    assert backstop.draw_state(alts_pool)[1:] == (usd(240), usd(100))  # alts' own cap (40% of 600) was not the limit
    assert backstop.draw_capacity(pool) == backstop.draw_capacity(alts_pool) == 0
    assert backstop.totalAssets() == usd(500)
    # nothing more leaves in this window, from either member
    assert _draw(pool, backstop, settler, usd(1))[1].paid == 0
    assert _draw(alts_pool, backstop, settler, usd(1))[1].paid == 0


def test_windows_roll_over(pool, alts_pool, backstop, token, settler, lp, deployer, usd):
    """The global window and majors' window open at t0, alts' at t0 + 12 h. At t0 + 1 day majors
    and the global window roll over; alts is still bounded by its own window until t0 + 36 h."""
    deposit(token, backstop, lp, usd(1000))
    backstop.set_member(pool, 2000, sender=deployer)  # 20% per member, 50% global
    backstop.set_member(alts_pool, 2000, sender=deployer)
    backstop.set_draw_window(DAY, sender=deployer)
    t0 = _draw(pool, backstop, settler, usd(1000))[0].timestamp  # majors: 200
    next_tx_at(t0 + DAY // 2)
    t1 = _draw(alts_pool, backstop, settler, usd(1000))[0].timestamp  # alts: 20% of 800 + 0 = 160
    assert backstop.draw_state(alts_pool) == (t1, usd(160), usd(160))
    assert backstop.global_draw_state() == (t0, usd(500), usd(360))
    next_tx_at(t0 + DAY - 1)
    assert _draw(pool, backstop, settler, usd(1000))[1].paid == 0  # majors' window still open
    next_tx_at(t0 + DAY)
    receipt, majors_draw = _draw(pool, backstop, settler, usd(1000))
    assert majors_draw.paid == usd(640) // 5  # new windows: 20% of the 640 left
    assert backstop.draw_state(pool) == (receipt.timestamp, usd(128), usd(128))
    assert backstop.global_draw_state() == (receipt.timestamp, usd(320), usd(128))
    assert _draw(alts_pool, backstop, settler, usd(1000))[1].paid == 0  # alts' window (from t1) is still spent
    next_tx_at(t1 + DAY)
    _, alts_draw = _draw(alts_pool, backstop, settler, usd(1000))
    assert alts_draw.paid == usd(512) // 5  # alts' new window: 20% of the 512 left


def test_global_draw_cap_setter(pool, backstop, deployer, attacker):
    with ape.reverts(MISSING_ROLE):
        backstop.set_global_draw_cap(1000, sender=attacker)
    with ape.reverts("backstop: bps > 10000"):
        backstop.set_global_draw_cap(10_001, sender=deployer)
    receipt = backstop.set_global_draw_cap(10_000, sender=deployer)
    [log] = receipt.decode_logs(backstop.ParamSet)
    assert (log.param, log.value) == ("global_draw_cap_bps", 10_000)
    assert backstop.global_draw_cap_bps() == 10_000
    # the packed parameters (and the member caps) stay independent of each other
    backstop.set_member(pool, 1234, sender=deployer)
    receipt = backstop.set_draw_window(3600, sender=deployer)
    [log] = receipt.decode_logs(backstop.ParamSet)
    assert (log.param, log.value) == ("draw_window", 3600)
    params = lambda: (backstop.member_cap_bps(pool), backstop.global_draw_cap_bps(), backstop.draw_window())  # noqa: E731
    assert params() == (1234, 10_000, 3600)
    backstop.set_global_draw_cap(0, sender=deployer)
    assert params() == (1234, 0, 3600)
    backstop.set_draw_window(7200, sender=deployer)
    assert params() == (1234, 0, 7200)


def test_zero_global_cap_stops_every_draw(pool, backstop, token, settler, lp, deployer, usd):
    deposit(token, backstop, lp, usd(1000))
    backstop.set_global_draw_cap(0, sender=deployer)
    assert backstop.draw_capacity(pool) == 0
    receipt, draw = _draw(pool, backstop, settler, usd(10))
    assert draw.paid == 0
    # a draw that pays nothing opens no window
    assert backstop.draw_state(pool) == (0, usd(250), 0) and backstop.global_draw_state() == (0, 0, 0)
