"""OracleAdapter: feed registration, validation, scaling and every rejection of price()."""

import ape
import pytest

from backstop.client.actors import fill, signed_order
from backstop.core.units import wad

MISSING_ROLE = "access_control: account is missing role"
FREE_ID = 77  # a market id without a feed in the session deployment


@pytest.fixture
def oracle(system):
    return system.oracle


def _feed(project, deployer, decimals, answer):
    return project.MockAggregator.deploy(decimals, f"feed{decimals}", answer, sender=deployer)


# ---------------------------------------------------------------- set_feed


def test_set_feed_registers_and_emits_event(project, oracle, deployer):
    feed = _feed(project, deployer, 8, 2 * 10**8)
    tx = oracle.set_feed(FREE_ID, feed, 1800, wad("0.5"), wad(100), sender=deployer)
    assert oracle.has_feed(FREE_ID)
    assert tuple(oracle.feed_of(FREE_ID)) == (feed.address, 1800, 8, wad("0.5"), wad(100))
    (event,) = oracle.FeedSet.from_receipt(tx)
    assert (event.market, event.aggregator, event.heartbeat, event.min_price, event.max_price) == (
        FREE_ID, feed.address, 1800, wad("0.5"), wad(100))
    assert oracle.price(FREE_ID) == wad(2)


def test_set_feed_replaces_existing_feed(project, oracle, deployer, eth):
    feed = _feed(project, deployer, 18, wad(3500))
    oracle.set_feed(eth.id, feed, 60, wad(1), wad(10_000), sender=deployer)
    assert oracle.price(eth.id) == wad(3500)
    assert oracle.feed_of(eth.id)[0] == feed.address


def test_unknown_feed(oracle):
    assert not oracle.has_feed(FREE_ID)
    with ape.reverts("oracle: unknown feed"):
        oracle.price(FREE_ID)


def test_set_feed_by_unauthorized_account_reverts(project, oracle, deployer, attacker):
    feed = _feed(project, deployer, 8, 10**8)
    with ape.reverts(MISSING_ROLE):
        oracle.set_feed(FREE_ID, feed, 3600, 1, wad(10), sender=attacker)


def test_feed_admin_role_can_be_granted(project, oracle, deployer, keeper):
    feed = _feed(project, deployer, 8, 10**8)
    oracle.grantRole(oracle.FEED_ADMIN_ROLE(), keeper, sender=deployer)
    oracle.set_feed(FREE_ID, feed, 3600, 1, wad(10), sender=keeper)
    assert oracle.has_feed(FREE_ID)


def test_set_feed_zero_aggregator_reverts(oracle, deployer):
    with ape.reverts("oracle: zero aggregator"):
        oracle.set_feed(FREE_ID, ape.utils.ZERO_ADDRESS, 3600, 1, wad(10), sender=deployer)


@pytest.mark.parametrize("heartbeat", [0, 7 * 86400 + 1])
def test_set_feed_bad_heartbeat_reverts(project, oracle, deployer, heartbeat):
    feed = _feed(project, deployer, 8, 10**8)
    with ape.reverts("oracle: bad heartbeat"):
        oracle.set_feed(FREE_ID, feed, heartbeat, 1, wad(10), sender=deployer)


def test_set_feed_max_heartbeat_accepted(project, oracle, deployer):
    feed = _feed(project, deployer, 8, 10**8)
    oracle.set_feed(FREE_ID, feed, 7 * 86400, 1, wad(10), sender=deployer)
    assert oracle.feed_of(FREE_ID)[1] == 7 * 86400


@pytest.mark.parametrize(
    "bounds", [(0, wad(10)), (wad(10), wad(10)), (wad(11), wad(10)), (1, 2**128)],
    ids=["zero_min", "min_eq_max", "min_gt_max", "max_overflow"],
)
def test_set_feed_bad_bounds_revert(project, oracle, deployer, bounds):
    feed = _feed(project, deployer, 8, 10**8)
    with ape.reverts("oracle: bad bounds"):
        oracle.set_feed(FREE_ID, feed, 3600, *bounds, sender=deployer)


def test_set_feed_too_many_decimals_reverts(project, oracle, deployer):
    feed = _feed(project, deployer, 37, 10**37)
    with ape.reverts("oracle: bad decimals"):
        oracle.set_feed(FREE_ID, feed, 3600, 1, wad(10), sender=deployer)


# ---------------------------------------------------------------- scaling


@pytest.mark.parametrize(
    "decimals, answer, expected",
    [
        (8, 3000_12345678, wad("3000.12345678")),
        (18, wad("3000.123456789012345678"), wad("3000.123456789012345678")),
        (20, 3000_12345678901234567899, wad("3000.123456789012345678")),  # truncated, not rounded
        (6, 1_500_000, wad("1.5")),
        (0, 42, wad(42)),
        (36, 7 * 10**36 + 10**18 - 1, 7 * 10**18),
    ],
)
def test_price_scales_feed_decimals_to_18(project, oracle, deployer, decimals, answer, expected):
    feed = _feed(project, deployer, decimals, answer)
    oracle.set_feed(FREE_ID, feed, 3600, 1, wad(10**7), sender=deployer)
    assert oracle.price(FREE_ID) == expected


def test_session_markets_are_priced_from_8_decimal_feeds(system, oracle):
    assert oracle.price(system.markets["ETH-PERP"].id) == wad(3000)
    assert oracle.price(system.markets["BTC-PERP"].id) == wad(60000)
    assert oracle.price(system.markets["SOL-PERP"].id) == wad(150)


# ---------------------------------------------------------------- rejections


def test_stale_round_reverts(oracle, chain, deployer, eth):
    eth.feed.set_round(3000 * 10**8, chain.blocks.head.timestamp - 3700, sender=deployer)
    with ape.reverts("oracle: stale price"):
        oracle.price(eth.id)


def test_recent_round_within_heartbeat_accepted(oracle, chain, deployer, eth):
    eth.feed.set_round(3100 * 10**8, chain.blocks.head.timestamp - 3500, sender=deployer)
    assert oracle.price(eth.id) == wad(3100)


def test_price_goes_stale_when_time_passes(oracle, chain, eth):
    chain.mine(timestamp=chain.blocks.head.timestamp + 3700)
    with ape.reverts("oracle: stale price"):
        oracle.price(eth.id)


@pytest.mark.parametrize("age, ok", [(3600, True), (3601, False)])
def test_heartbeat_boundary_seen_by_a_fill(funded, chain, deployer, maker, trader, eth, age, ok):
    """Exact boundary through a transaction, whose block time we set: age == heartbeat passes."""
    order = signed_order(funded, maker, eth.id, wad(1), wad(3000))
    updated = chain.blocks.head.timestamp + 10
    eth.feed.set_round(3000 * 10**8, updated, sender=deployer)
    chain.pending_timestamp = updated + age
    if ok:
        fill(funded, order, trader)
        assert funded.vault.position(maker, eth.id)[0] == wad(1)
    else:
        with ape.reverts("oracle: stale price"):
            fill(funded, order, trader)


def test_round_from_the_future_reverts(oracle, chain, deployer, eth):
    eth.feed.set_round(3000 * 10**8, chain.blocks.head.timestamp + 1000, sender=deployer)
    with ape.reverts("oracle: round from the future"):
        oracle.price(eth.id)


@pytest.mark.parametrize("answer", [0, -1, -(10**20)])
def test_non_positive_answer_reverts(oracle, deployer, eth, answer):
    eth.feed.set_answer(answer, sender=deployer)
    with ape.reverts("oracle: non-positive price"):
        oracle.price(eth.id)


def test_price_at_bounds_accepted_and_outside_rejected(project, oracle, deployer):
    feed = _feed(project, deployer, 18, wad(1))
    oracle.set_feed(FREE_ID, feed, 3600, wad(1), wad(2), sender=deployer)
    assert oracle.price(FREE_ID) == wad(1)
    feed.set_answer(wad(2), sender=deployer)
    assert oracle.price(FREE_ID) == wad(2)
    feed.set_answer(wad(2) + 1, sender=deployer)
    with ape.reverts("oracle: price out of bounds"):
        oracle.price(FREE_ID)
    feed.set_answer(wad(1) - 1, sender=deployer)
    with ape.reverts("oracle: price out of bounds"):
        oracle.price(FREE_ID)


def test_bounds_apply_after_scaling(project, oracle, deployer):
    feed = _feed(project, deployer, 8, 99_999_999)  # 0.99999999 < min 1.0
    oracle.set_feed(FREE_ID, feed, 3600, wad(1), wad(2), sender=deployer)
    with ape.reverts("oracle: price out of bounds"):
        oracle.price(FREE_ID)


# ---------------------------------------------------------------- latest_round


def test_latest_round_is_the_price_with_its_round(oracle, chain, deployer, eth):
    eth.feed.set_round(3210 * 10**8, chain.blocks.head.timestamp - 5, sender=deployer)
    round_id, _, _, updated_at, _ = eth.feed.latestRoundData()
    assert tuple(oracle.latest_round(eth.id)) == (oracle.price(eth.id), round_id, updated_at)


@pytest.mark.parametrize("bad, reason", [
    ("stale", "oracle: stale price"), ("future", "oracle: round from the future"),
    ("zero", "oracle: non-positive price"), ("huge", "oracle: price out of bounds"),
])
def test_latest_round_refuses_every_round_price_refuses(oracle, chain, deployer, eth, bad, reason):
    now = chain.blocks.head.timestamp
    answer, at = {"stale": (3000 * 10**8, now - 3700), "future": (3000 * 10**8, now + 1000),
                  "zero": (0, now), "huge": (10**30, now)}[bad]
    eth.feed.set_round(answer, at, sender=deployer)
    for view in (oracle.price, oracle.latest_round):
        with ape.reverts(reason):
            view(eth.id)


def test_latest_round_of_an_unknown_feed_reverts(oracle):
    with ape.reverts("oracle: unknown feed"):
        oracle.latest_round(FREE_ID)
