"""Fixtures local to the vault suite (6- and 18-decimal systems, parameters, model)."""

import pytest

from backstop.client.actors import fund
from backstop.core.ledger import MarketCfg, Model
from backstop.core.units import quote


@pytest.fixture(params=["system", "system18"], ids=["usdc6", "quote18"])
def any_system(request):
    """The 6-decimal and the 18-decimal deployment, one after the other."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def any_usd(any_system):
    return lambda x: quote(x, any_system.decimals)


@pytest.fixture
def any_funded(any_system, maker, trader, any_usd):
    """Maker and trader each hold 100,000 quote units in every segment of `any_system`."""
    for account in (maker, trader):
        for segment in any_system.segments.values():
            fund(any_system, account, segment, any_usd(100_000))
    return any_system


def market_params(system, label, **overrides):
    """The market's current MarketParams tuple with some fields replaced."""
    current = system.lens.market(system.markets[label].id)
    fields = dict(
        segment=current.segment,
        im_ratio=current.im_ratio,
        mm_ratio=current.mm_ratio,
        taker_fee_bps=current.taker_fee_bps,
        maker_fee_bps=current.maker_fee_bps,
        price_band_bps=current.price_band_bps,
        max_open_interest=current.max_open_interest,
        size_knee=current.size_knee,
    )
    fields.update(overrides)
    return tuple(fields.values())


def model_of(system) -> Model:
    """A reference model configured like `system`'s markets (empty ledger)."""
    markets = {}
    for m in system.markets.values():
        p = system.lens.market(m.id)
        markets[m.id] = MarketCfg(p.segment, p.im_ratio, p.mm_ratio, p.taker_fee_bps, p.maker_fee_bps)
    return Model(decimals=system.decimals, markets=markets)


@pytest.fixture
def params():
    return market_params


@pytest.fixture
def make_model():
    return model_of
