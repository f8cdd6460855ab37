# pragma version ~=0.4.3
"""
@title PackingHarness
@notice Test double: exposes every function of the packing module so that tests can round-trip
        each packed word of MarginVault (tests/vault/test_packing.py). Never deployed outside tests.
"""

from interfaces import IMarginVault

from .. import packing


@external
@pure
def lo(word: uint256) -> int256:
    return packing._lo(word)


@external
@pure
def hi(word: uint256) -> int256:
    return packing._hi(word)


@external
@pure
def pack(lo: int256, hi: int256) -> uint256:
    return packing._pack(lo, hi)


@external
@pure
def pack_account(collateral: int256, mask: uint256) -> uint256:
    return packing._pack_account(collateral, mask)


@external
@pure
def with_collateral(account: uint256, collateral: int256) -> uint256:
    return packing._with_collateral(account, collateral)


@external
@pure
def pack_config(params: IMarginVault.MarketParams) -> uint256:
    return packing._pack_config(params)


@external
@pure
def unpack_config(config: uint256) -> IMarginVault.MarketParams:
    return packing._unpack_config(config)


@external
@pure
def is_listed(config: uint256) -> bool:
    return packing._is_listed(config)


@external
@pure
def pack_market_state(open_interest: uint256, fees: uint256, penalties: uint256) -> uint256:
    return packing._pack_market_state(open_interest, fees, penalties)


@external
@pure
def unpack_market_state(state: uint256) -> (uint256, uint256, uint256):
    return packing._unpack_market_state(state)


@external
@pure
def unpack_segment_state(state: uint256) -> (uint256, uint256):
    return packing._unpack_segment_state(state)


@external
@pure
def market_count(listed: uint256) -> uint256:
    return packing._market_count(listed)


@external
@pure
def market_at(listed: uint256, index: uint256) -> uint256:
    return packing._market_at(listed, index)


@external
@pure
def append_market(listed: uint256, market: uint256) -> uint256:
    return packing._append_market(listed, market)


@external
@pure
def ceil_div(numerator: int256, denominator: int256) -> int256:
    return packing._ceil_div(numerator, denominator)


@external
@pure
def floor_div(numerator: int256, denominator: int256) -> int256:
    return packing._floor_div(numerator, denominator)


@external
@pure
def mul_up(amount: uint256, ratio: uint256) -> uint256:
    return packing._mul_up(amount, ratio)


@external
@pure
def pack_funding(index: int256, premium: int256, last: uint256) -> uint256:
    return packing._pack_funding(index, premium, last)


@external
@pure
def unpack_funding(word: uint256) -> (int256, int256, uint256):
    return packing._unpack_funding(word)
