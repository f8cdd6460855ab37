# pragma version ~=0.4.3
"""
@title packing
@notice The layouts of MarginVault's packed storage words, in one place. Hot paths read a
        field with its offset and mask inline (`(config >> packing.CONFIG_MM) & MASK_64`: no
        internal call); configuration and views pack and unpack whole words with the
        functions below. tests/vault/test_packing.py round-trips every word.
@dev Layouts (low bits first):
       account  (owner, segment) : collateral int128 | open-market mask uint128
       position (owner, market)  : size int128 | entry notional int128
       market config             : segment u8 | listed u8 | IM u64 | MM u64 | taker fee u16 |
                                   maker fee u16 | price band u16 | max open interest u48 |
                                   size knee u16
       market funding            : funding index int128 | premium int64 | last update u64
       market state              : open interest u96 | accrued fees u80 | accrued penalties u80
       segment state             : cash u192 | withdrawals gated until u64
       segment markets           : count u8 | market id u8 x 16 (listing order)
"""

from . import constants

from interfaces import IMarginVault


# ---------------------------------------------------------------- constants

# market config offsets
CONFIG_LISTED: constant(uint256) = 8
CONFIG_IM: constant(uint256) = 16
CONFIG_MM: constant(uint256) = 80
CONFIG_TAKER_FEE: constant(uint256) = 144
CONFIG_MAKER_FEE: constant(uint256) = 160
CONFIG_BAND: constant(uint256) = 176
CONFIG_MAX_OI: constant(uint256) = 192
CONFIG_KNEE: constant(uint256) = 240

# market funding offsets
FUNDING_PREMIUM: constant(uint256) = 128
FUNDING_LAST: constant(uint256) = 192

# market state offsets
STATE_FEES: constant(uint256) = 96
STATE_PENALTIES: constant(uint256) = 176

# segment state: withdrawals gated until (high 64 bits)
SEGMENT_GATE: constant(uint256) = 192

# segment markets: 8-bit ids after the 8-bit count
MARKET_IDS: constant(uint256) = 8
MAX_MARKETS_PER_SEGMENT: constant(uint256) = 16


# ---------------------------------------------------------------- signed halves

@internal
@pure
def _lo(word: uint256) -> int256:
    """
    @dev The signed low 128 bits of `word`.
    """
    return convert(convert(word << 128, bytes32), int256) >> 128


@internal
@pure
def _hi(word: uint256) -> int256:
    """
    @dev The signed high 128 bits of `word`.
    """
    return convert(convert(word, bytes32), int256) >> 128


@internal
@pure
def _pack(lo: int256, hi: int256) -> uint256:
    """
    @dev Two signed halves in one word; reverts if either does not fit in int128.
    """
    low: int128 = convert(lo, int128)
    high: int128 = convert(hi, int128)
    return (convert(convert(convert(high, int256), bytes32), uint256) << 128) | (
        convert(convert(convert(low, int256), bytes32), uint256) & constants.MASK_128
    )


@internal
@pure
def _pack_account(collateral: int256, mask: uint256) -> uint256:
    """
    @dev An account word: signed collateral (int128) and the open-market mask (uint128).
    """
    low: int128 = convert(collateral, int128)
    return (mask << 128) | (convert(convert(convert(low, int256), bytes32), uint256) & constants.MASK_128)


@internal
@pure
def _with_collateral(account: uint256, collateral: int256) -> uint256:
    """
    @dev `account` with its collateral replaced, its mask kept.
    """
    return self._pack_account(collateral, account >> 128)


# ---------------------------------------------------------------- market config

@internal
@pure
def _pack_config(params: IMarginVault.MarketParams) -> uint256:
    """
    @dev A listed market's config word. The caller has validated the ranges; a field that
         does not fit its width would corrupt its neighbour, so widths are asserted here too.
    """
    assert params.segment <= constants.MASK_8, "packing: field overflow"
    assert params.im_ratio <= constants.MASK_64 and params.mm_ratio <= constants.MASK_64, "packing: field overflow"
    assert params.taker_fee_bps <= constants.MASK_16 and params.maker_fee_bps <= constants.MASK_16, (
        "packing: field overflow"
    )
    assert params.price_band_bps <= constants.MASK_16, "packing: field overflow"
    assert params.max_open_interest <= constants.MASK_48, "packing: field overflow"
    assert params.size_knee <= constants.MASK_16, "packing: field overflow"
    return (
        params.segment
        | (1 << CONFIG_LISTED)
        | (params.im_ratio << CONFIG_IM)
        | (params.mm_ratio << CONFIG_MM)
        | (params.taker_fee_bps << CONFIG_TAKER_FEE)
        | (params.maker_fee_bps << CONFIG_MAKER_FEE)
        | (params.price_band_bps << CONFIG_BAND)
        | (params.max_open_interest << CONFIG_MAX_OI)
        | (params.size_knee << CONFIG_KNEE)
    )


@internal
@pure
def _unpack_config(config: uint256) -> IMarginVault.MarketParams:
    """
    @dev The fields of a config word (the listed flag is not a field).
    """
    return IMarginVault.MarketParams(
        segment=config & constants.MASK_8,
        im_ratio=(config >> CONFIG_IM) & constants.MASK_64,
        mm_ratio=(config >> CONFIG_MM) & constants.MASK_64,
        taker_fee_bps=(config >> CONFIG_TAKER_FEE) & constants.MASK_16,
        maker_fee_bps=(config >> CONFIG_MAKER_FEE) & constants.MASK_16,
        price_band_bps=(config >> CONFIG_BAND) & constants.MASK_16,
        max_open_interest=(config >> CONFIG_MAX_OI) & constants.MASK_48,
        size_knee=config >> CONFIG_KNEE,
    )


@internal
@pure
def _with_ratios(config: uint256, im_ratio: uint256, mm_ratio: uint256) -> uint256:
    """
    @dev A config word with its two margin ratios replaced and every other field kept.
    """
    assert im_ratio <= constants.MASK_64 and mm_ratio <= constants.MASK_64, "packing: field overflow"
    kept: uint256 = config & ~((constants.MASK_64 << CONFIG_IM) | (constants.MASK_64 << CONFIG_MM))
    return kept | (im_ratio << CONFIG_IM) | (mm_ratio << CONFIG_MM)


@internal
@pure
def _is_listed(config: uint256) -> bool:
    """
    @dev Whether a config word belongs to a listed market.
    """
    return (config >> CONFIG_LISTED) & 1 == 1


# ---------------------------------------------------------------- market state

@internal
@pure
def _pack_market_state(open_interest: uint256, fees: uint256, penalties: uint256) -> uint256:
    """
    @dev A market state word; reverts (never wraps) when a field overflows its width.
    """
    assert open_interest <= constants.MASK_96 and fees <= constants.MASK_80 and penalties <= constants.MASK_80, (
        "packing: market state overflow"
    )
    return open_interest | (fees << STATE_FEES) | (penalties << STATE_PENALTIES)


@internal
@pure
def _unpack_market_state(state: uint256) -> (uint256, uint256, uint256):
    """
    @dev (open interest, accrued fees, accrued penalties) of a market state word.
    """
    return state & constants.MASK_96, (state >> STATE_FEES) & constants.MASK_80, state >> STATE_PENALTIES


# ---------------------------------------------------------------- market funding

@internal
@pure
def _pack_funding(index: int256, premium: int256, last: uint256) -> uint256:
    """
    @dev A market funding word; reverts (never wraps) when a field overflows its width.
    """
    packed_index: int128 = convert(index, int128)
    packed_premium: int64 = convert(premium, int64)
    return (
        (convert(convert(convert(packed_index, int256), bytes32), uint256) & constants.MASK_128)
        | ((convert(convert(convert(packed_premium, int256), bytes32), uint256) & constants.MASK_64) << FUNDING_PREMIUM)
        | (last << FUNDING_LAST)
    )


@internal
@pure
def _unpack_funding(word: uint256) -> (int256, int256, uint256):
    """
    @dev (funding index, premium, last update) of a market funding word.
    """
    premium: int256 = convert(convert(word << 64, bytes32), int256) >> 192
    return self._lo(word), premium, word >> FUNDING_LAST


# ---------------------------------------------------------------- segment words

@internal
@pure
def _unpack_segment_state(state: uint256) -> (uint256, uint256):
    """
    @dev (cash, withdrawals gated until) of a segment state word.
    """
    return state & constants.MASK_192, state >> SEGMENT_GATE


@internal
@pure
def _market_count(listed: uint256) -> uint256:
    """
    @dev How many markets a segment-markets word lists.
    """
    return listed & constants.MASK_8


@internal
@pure
def _market_at(listed: uint256, index: uint256) -> uint256:
    """
    @dev The `index`-th market id of a segment-markets word.
    """
    return (listed >> (MARKET_IDS + 8 * index)) & constants.MASK_8


@internal
@pure
def _append_market(listed: uint256, market: uint256) -> uint256:
    """
    @dev A segment-markets word with `market` appended; the caller checks the count and id.
    """
    count: uint256 = listed & constants.MASK_8
    return ((listed | (market << (MARKET_IDS + 8 * count))) & ~constants.MASK_8) | (count + 1)


# ---------------------------------------------------------------- rounding

@internal
@pure
def _ceil_div(numerator: int256, denominator: int256) -> int256:
    """
    @dev Signed ceiling division, denominator > 0 (Vyper's `//` truncates toward zero, which
         is already the ceiling for negatives).
    """
    if numerator <= 0:
        return numerator // denominator
    return (numerator + denominator - 1) // denominator


@internal
@pure
def _floor_div(numerator: int256, denominator: int256) -> int256:
    """
    @dev Signed floor division, denominator > 0.
    """
    if numerator >= 0:
        return numerator // denominator
    return -((-numerator + denominator - 1) // denominator)


@internal
@pure
def _mul_up(amount: uint256, ratio: uint256) -> uint256:
    """
    @dev amount * ratio / WAD, rounded up.
    """
    return (amount * ratio + constants.WAD - 1) // constants.WAD
