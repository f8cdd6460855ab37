# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize gas
"""
@title OracleAdapter
@notice Reads Chainlink AggregatorV3 feeds, one per market id, and returns prices as
        18-decimal fixed point. Rejects stale rounds (per-feed heartbeat), rounds from
        the future, non-positive answers and answers outside the feed's sanity bounds.
@dev Each feed is two storage words so that a price read costs two cold SLOADs plus the
     aggregator call: word 0 = aggregator (160 bits) | heartbeat (32) | feed decimals (8);
     word 1 = min price (128, 18 decimals) | max price (128, 18 decimals).
"""

from interfaces import IAggregatorV3
from interfaces import IOracleAdapter

implements: IOracleAdapter

from snekmate.auth import access_control

initializes: access_control

exports: access_control.__interface__


FEED_ADMIN_ROLE: public(constant(bytes32)) = keccak256("FEED_ADMIN_ROLE")
PRICE_DECIMALS: constant(uint256) = 18
MAX_FEED_DECIMALS: constant(uint256) = 36
MAX_HEARTBEAT: constant(uint256) = 7 * 86400
MASK_128: constant(uint256) = 2**128 - 1
MASK_160: constant(uint256) = 2**160 - 1
MASK_32: constant(uint256) = 2**32 - 1
MASK_8: constant(uint256) = 2**8 - 1
# A feed without a fresh, in-bounds round is valued this far from its last answer, against
# the account holding it (see price_range): 25% covers a heartbeat's move in all but a crash.
STALE_HAIRCUT_BPS: public(constant(uint256)) = 2_500
_BPS: constant(uint256) = 10_000

_feed: HashMap[uint256, uint256]
_bounds: HashMap[uint256, uint256]


event FeedSet:
    market: indexed(uint256)
    aggregator: indexed(address)
    heartbeat: uint256
    min_price: uint256
    max_price: uint256


@deploy
def __init__():
    access_control.__init__()
    access_control._grant_role(FEED_ADMIN_ROLE, msg.sender)


@external
def set_feed(market: uint256, aggregator: address, heartbeat: uint256, min_price: uint256, max_price: uint256):
    """
    @notice Register or replace the feed of a market.
    @param market The vault's market id.
    @param aggregator A Chainlink AggregatorV3Interface price feed.
    @param heartbeat Maximum age in seconds of an accepted round.
    @param min_price Lowest accepted price, 18 decimals (> 0).
    @param max_price Highest accepted price, 18 decimals.
    """
    access_control._check_role(FEED_ADMIN_ROLE, msg.sender)
    assert aggregator != empty(address), "oracle: zero aggregator"
    assert heartbeat > 0 and heartbeat <= MAX_HEARTBEAT, "oracle: bad heartbeat"
    assert min_price > 0 and min_price < max_price and max_price <= MASK_128, "oracle: bad bounds"
    feed_decimals: uint256 = convert(staticcall IAggregatorV3(aggregator).decimals(), uint256)
    assert feed_decimals <= MAX_FEED_DECIMALS, "oracle: bad decimals"
    self._feed[market] = convert(aggregator, uint256) | (heartbeat << 160) | (feed_decimals << 192)
    self._bounds[market] = min_price | (max_price << 128)
    log FeedSet(market=market, aggregator=aggregator, heartbeat=heartbeat, min_price=min_price, max_price=max_price)


@external
@view
def price(market: uint256) -> uint256:
    """
    @notice The validated price of `market`, 18 decimals.
    @dev Reverts "oracle: unknown feed", "oracle: stale price", "oracle: non-positive price"
         or "oracle: price out of bounds".
    @param market The vault's market id.
    @return uint256 Price in quote units per base unit, 18 decimals.
    """
    return self._price(market)


@external
@view
def latest_round(market: uint256) -> (uint256, uint256, uint256):
    """
    @notice The validated price of `market` with the round it comes from, in one call (for a
            consumer that folds rounds, e.g. RiskParams).
    @dev Same checks and reverts as `price`.
    @param market The vault's market id.
    @return uint256 Price in quote units per base unit, 18 decimals.
    @return uint256 The feed's round id.
    @return uint256 The round's updatedAt timestamp.
    """
    word: uint256 = self._feed[market]
    round_id: uint80 = 0
    answer: int256 = 0
    updated_at: uint256 = 0
    round_id, answer, updated_at = self._latest(word)
    return self._checked(market, word, answer, updated_at), convert(round_id, uint256), updated_at


@external
@view
def price_range(market: uint256) -> (uint256, uint256):
    """
    @notice A conservative price range of `market` that never reverts for a bad round, so
            that health checks keep working for an account's other markets.
    @dev Fresh, in-bounds round: (price, price). A stale in-bounds round: its answer
         +- STALE_HAIRCUT_BPS, within the bounds. A non-positive answer, one outside the
         bounds or a round from the future: (min bound, max bound). Callers
         value longs at the low end and shorts at the high end. Reverts only for an unknown
         feed.
    @param market The vault's market id.
    @return uint256 Low end (18 decimals).
    @return uint256 High end (18 decimals).
    """
    word: uint256 = self._feed[market]
    round_id: uint80 = 0
    answer: int256 = 0
    updated_at: uint256 = 0
    round_id, answer, updated_at = self._latest(word)
    bounds: uint256 = self._bounds[market]
    low_bound: uint256 = bounds & MASK_128
    high_bound: uint256 = bounds >> 128
    if answer <= 0 or updated_at > block.timestamp:
        return low_bound, high_bound
    scaled: uint256 = self._scale(convert(answer, uint256), (word >> 192) & MASK_8, high_bound)
    if scaled < low_bound or scaled > high_bound:
        # an answer outside the sanity bounds says nothing about the price
        return low_bound, high_bound
    if block.timestamp - updated_at <= (word >> 160) & MASK_32:
        return scaled, scaled
    return (
        max(scaled * (_BPS - STALE_HAIRCUT_BPS) // _BPS, low_bound),
        min(scaled * (_BPS + STALE_HAIRCUT_BPS) // _BPS, high_bound),
    )


@external
@view
def has_feed(market: uint256) -> bool:
    """
    @notice Whether a feed is registered for `market`.
    """
    return self._feed[market] != 0


@external
@view
def feed_of(market: uint256) -> (address, uint256, uint256, uint256, uint256):
    """
    @notice The registered feed: (aggregator, heartbeat, feed decimals, min price, max price).
    """
    word: uint256 = self._feed[market]
    bounds: uint256 = self._bounds[market]
    return (
        convert(convert(word & MASK_160, uint160), address),
        (word >> 160) & MASK_32,
        (word >> 192) & MASK_8,
        bounds & MASK_128,
        bounds >> 128,
    )


@internal
@view
def _price(market: uint256) -> uint256:
    word: uint256 = self._feed[market]
    round_id: uint80 = 0
    answer: int256 = 0
    updated_at: uint256 = 0
    round_id, answer, updated_at = self._latest(word)
    return self._checked(market, word, answer, updated_at)


@internal
@view
def _checked(market: uint256, word: uint256, answer: int256, updated_at: uint256) -> uint256:
    assert answer > 0, "oracle: non-positive price"
    assert updated_at <= block.timestamp, "oracle: round from the future"
    assert block.timestamp - updated_at <= (word >> 160) & MASK_32, "oracle: stale price"
    bounds: uint256 = self._bounds[market]
    scaled: uint256 = self._scale(convert(answer, uint256), (word >> 192) & MASK_8, bounds >> 128)
    assert scaled >= bounds & MASK_128 and scaled <= bounds >> 128, "oracle: price out of bounds"
    return scaled


@internal
@view
def _latest(word: uint256) -> (uint80, int256, uint256):
    assert word != 0, "oracle: unknown feed"
    aggregator: address = convert(convert(word & MASK_160, uint160), address)
    answer: int256 = 0
    updated_at: uint256 = 0
    round_id: uint80 = 0
    started: uint256 = 0
    answered: uint80 = 0
    round_id, answer, started, updated_at, answered = staticcall IAggregatorV3(aggregator).latestRoundData()
    return round_id, answer, updated_at


@internal
@pure
def _scale(raw: uint256, feed_decimals: uint256, max_price: uint256) -> uint256:
    """
    @dev 18-decimal price of a raw answer. A raw answer above `max_price` is returned as
         max_price + 1 (out of bounds either way) so that scaling up can never overflow.
    """
    if feed_decimals < PRICE_DECIMALS:
        if raw > max_price:
            return max_price + 1
        return raw * 10 ** (PRICE_DECIMALS - feed_decimals)
    if feed_decimals > PRICE_DECIMALS:
        return raw // 10 ** (feed_decimals - PRICE_DECIMALS)
    return raw
