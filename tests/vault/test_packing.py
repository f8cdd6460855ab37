"""Round trips of every packed word of MarginVault through the packing module (Curve's
test_packing.py pattern): what is packed reads back field by field, every field at its width
limit survives, a field one past its width reverts instead of corrupting its neighbour, and the
rounding helpers agree with exact integer maths."""

import ape
import pytest
from hypothesis import given, settings, strategies as st

INT128 = st.integers(min_value=-(2**127), max_value=2**127 - 1)
U = lambda bits: st.integers(min_value=0, max_value=2**bits - 1)  # noqa: E731
EXAMPLES = settings(max_examples=40, deadline=None)
MASK_128 = 2**128 - 1


@pytest.fixture(scope="module")
def packing(project, deployer):
    return project.PackingHarness.deploy(sender=deployer)


@EXAMPLES
@given(lo=INT128, hi=INT128)
def test_position_word_round_trips(packing, lo, hi):
    word = packing.pack(lo, hi)
    assert (packing.lo(word), packing.hi(word)) == (lo, hi)
    assert word == ((hi & MASK_128) << 128) | (lo & MASK_128)


@pytest.mark.parametrize("lo, hi", [(2**127, 0), (0, 2**127), (-(2**127) - 1, 0), (0, -(2**127) - 1)])
def test_position_word_refuses_halves_beyond_int128(packing, lo, hi):
    with ape.reverts():
        packing.pack(lo, hi)


@EXAMPLES
@given(collateral=INT128, mask=U(128), new_collateral=INT128)
def test_account_word_round_trips_and_keeps_its_mask(packing, collateral, mask, new_collateral):
    account = packing.pack_account(collateral, mask)
    assert packing.lo(account) == collateral and account >> 128 == mask
    updated = packing.with_collateral(account, new_collateral)
    assert packing.lo(updated) == new_collateral and updated >> 128 == mask


CONFIG_FIELDS = st.tuples(U(8), U(64), U(64), U(16), U(16), U(16), U(48), U(16))


@EXAMPLES
@given(fields=CONFIG_FIELDS)
def test_market_config_round_trips(packing, fields):
    config = packing.pack_config(fields)
    assert tuple(packing.unpack_config(config)) == fields
    assert packing.is_listed(config)
    assert not packing.is_listed(config & ~(1 << 8))


@pytest.mark.parametrize("index, bits", list(enumerate([8, 64, 64, 16, 16, 16, 48, 16])))
def test_market_config_refuses_a_field_beyond_its_width(packing, index, bits):
    fields = [1] * 8
    fields[index] = 2**bits - 1
    assert tuple(packing.unpack_config(packing.pack_config(fields))) == tuple(fields)  # at the limit: kept
    fields[index] = 2**bits
    with ape.reverts("packing: field overflow"):
        packing.pack_config(fields)


@EXAMPLES
@given(open_interest=U(96), fees=U(80), penalties=U(80))
def test_market_state_round_trips(packing, open_interest, fees, penalties):
    state = packing.pack_market_state(open_interest, fees, penalties)
    assert tuple(packing.unpack_market_state(state)) == (open_interest, fees, penalties)


@pytest.mark.parametrize("fields", [(2**96, 0, 0), (0, 2**80, 0), (0, 0, 2**80)])
def test_market_state_refuses_overflow(packing, fields):
    with ape.reverts("packing: market state overflow"):
        packing.pack_market_state(*fields)


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@EXAMPLES
@given(index=INT128, premium=INT64, last=U(64))
def test_market_funding_round_trips(packing, index, premium, last):
    word = packing.pack_funding(index, premium, last)
    assert tuple(packing.unpack_funding(word)) == (index, premium, last)


@pytest.mark.parametrize("index, premium", [(2**127, 0), (-(2**127) - 1, 0), (0, 2**63), (0, -(2**63) - 1)])
def test_market_funding_refuses_fields_beyond_their_width(packing, index, premium):
    with ape.reverts():
        packing.pack_funding(index, premium, 0)


@EXAMPLES
@given(word=U(256))
def test_segment_state_splits_cash_and_gate(packing, word):
    assert tuple(packing.unpack_segment_state(word)) == (word & (2**192 - 1), word >> 192)


@EXAMPLES
@given(markets=st.lists(U(8), min_size=0, max_size=16))
def test_segment_listing_round_trips_in_listing_order(packing, markets):
    listed = 0
    for market in markets:
        listed = packing.append_market(listed, market)
    assert packing.market_count(listed) == len(markets)
    assert [packing.market_at(listed, i) for i in range(len(markets))] == markets


def _floor(n: int, d: int) -> int:
    return n // d  # Python floors


def _ceil(n: int, d: int) -> int:
    return -((-n) // d)


DIV = st.integers(min_value=-(2**200), max_value=2**200)


@EXAMPLES
@given(numerator=DIV, denominator=st.integers(min_value=1, max_value=2**100))
def test_signed_divisions_round_as_named(packing, numerator, denominator):
    assert packing.floor_div(numerator, denominator) == _floor(numerator, denominator)
    assert packing.ceil_div(numerator, denominator) == _ceil(numerator, denominator)


@EXAMPLES
@given(amount=U(128), ratio=U(64))
def test_mul_up_rounds_up(packing, amount, ratio):
    assert packing.mul_up(amount, ratio) == _ceil(amount * ratio, 10**18)
