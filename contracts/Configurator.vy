# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize codesize
"""
@title Configurator
@notice Lists segments and markets of MarginVault and sets their risk and fee parameters.
        It holds the vault's RISK_ADMIN_ROLE: every value is validated and packed here
        (layouts in packing.vy) and written with one gated vault setter, so the packed
        config word stays in the vault and a fill still reads it from its own storage.
@dev Roles: RISK_ADMIN_ROLE lists segments and markets and sets market parameters and the
     pools' fee share; DEFAULT_ADMIN_ROLE (the timelock on a live network) sets the treasury
     and the segments' insurance pools. Nothing here is pausable: pausing is the vault's.
"""

from ethereum.ercs import IERC4626

from interfaces import IConfigurator
from interfaces import IMarginVault
from interfaces import IOracleAdapter

implements: IConfigurator

from snekmate.auth import access_control

import constants
import packing

initializes: access_control

exports: (
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
)


# ---------------------------------------------------------------- constants

RISK_ADMIN_ROLE: public(constant(bytes32)) = keccak256("RISK_ADMIN_ROLE")

MAX_FEE_BPS: public(constant(uint256)) = 100
MAX_BAND_BPS: public(constant(uint256)) = 5_000
MAX_SEGMENTS: public(constant(uint256)) = 32
MAX_MARKETS: public(constant(uint256)) = 128  # one bit each in an account's open-market mask


# ---------------------------------------------------------------- storage

vault: public(immutable(IMarginVault))
_ORACLE: immutable(IOracleAdapter)


# ---------------------------------------------------------------- events

event SegmentAdded:
    segment: indexed(uint256)
    label: String[32]

event MarketAdded:
    market: indexed(uint256)
    segment: indexed(uint256)
    label: String[32]

event MarketParamsSet:
    market: indexed(uint256)
    im_ratio: uint256
    mm_ratio: uint256
    taker_fee_bps: uint256
    maker_fee_bps: uint256
    price_band_bps: uint256
    max_open_interest: uint256
    size_knee: uint256

event TreasurySet:
    treasury: indexed(address)

event SegmentPoolSet:
    segment: indexed(uint256)
    pool: indexed(address)

event PoolFeeShareSet:
    share_bps: uint256


# ---------------------------------------------------------------- constructor

@deploy
def __init__(vault_: IMarginVault):
    """
    @notice The deployer gets DEFAULT_ADMIN_ROLE and RISK_ADMIN_ROLE; the vault must then
            grant this contract its RISK_ADMIN_ROLE.
    @param vault_ The vault configured here.
    """
    access_control.__init__()
    access_control._grant_role(RISK_ADMIN_ROLE, msg.sender)
    vault = vault_
    _ORACLE = IOracleAdapter(staticcall vault_.oracle())


# ---------------------------------------------------------------- external

@external
def add_segment(label: String[32]) -> uint256:
    """
    @notice Register a new segment (asset class). Its accounts are isolated from others.
    @param label A human-readable name, e.g. "majors".
    @return uint256 The new segment id.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    assert staticcall vault.segment_count() < MAX_SEGMENTS, "configurator: too many segments"
    segment: uint256 = extcall vault.add_segment()
    log SegmentAdded(segment=segment, label=label)
    return segment


@external
def add_market(label: String[32], segment: uint256, params: IMarginVault.MarketParams) -> uint256:
    """
    @notice Register a market in `segment`; the oracle must already price it.
    @param label A human-readable name, e.g. "ETH-PERP".
    @param segment The segment the market belongs to.
    @param params Risk and fee parameters (params.segment is ignored).
    @return uint256 The new market id.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    self._check_segment(segment)
    market: uint256 = staticcall vault.market_count()
    assert market < MAX_MARKETS, "configurator: too many markets"
    listed: uint256 = staticcall vault.segment_listing(segment)
    assert packing._market_count(listed) < packing.MAX_MARKETS_PER_SEGMENT, "configurator: segment full"
    assert staticcall _ORACLE.has_feed(market), "configurator: market has no feed"
    self._write_params(market, segment, params)
    log MarketAdded(market=market, segment=segment, label=label)
    return market


@external
def set_market_params(market: uint256, params: IMarginVault.MarketParams):
    """
    @notice Update the risk and fee parameters of a market (its segment never changes).
    @param market The market id.
    @param params New parameters (params.segment is ignored).
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    # reverts "vault: unknown market" for a market that is not listed
    config: uint256 = staticcall vault.market_config(market)
    self._write_params(market, config & constants.MASK_8, params)


@external
def set_treasury(treasury_: address):
    """
    @notice Set the receiver of the treasury's share of fees (admin only).
    @param treasury_ The new treasury; not the zero address.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert treasury_ != empty(address), "configurator: zero treasury"
    extcall vault.set_fee_routing(treasury_, staticcall vault.pool_fee_share_bps())
    log TreasurySet(treasury=treasury_)


@external
def set_segment_pool(segment: uint256, pool: address):
    """
    @notice Register the insurance pool that earns the fees and covers the deficits of
            `segment` (admin only); it must hold the vault's quote token.
    @param segment The segment.
    @param pool The segment's insurance pool.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._check_segment(segment)
    assert staticcall IERC4626(pool).asset() == staticcall vault.quote(), "configurator: pool asset mismatch"
    extcall vault.set_segment_pool(segment, pool)
    log SegmentPoolSet(segment=segment, pool=pool)


@external
def set_pool_fee_share(share_bps: uint256):
    """
    @notice Share of trading fees (bps) paid to segment pools; the rest goes to the treasury.
    @param share_bps The pools' share, at most 10,000.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    assert share_bps <= constants.BPS, "configurator: bad fee share"
    extcall vault.set_fee_routing(staticcall vault.treasury(), share_bps)
    log PoolFeeShareSet(share_bps=share_bps)


# ---------------------------------------------------------------- internal

@internal
@view
def _check_segment(segment: uint256):
    assert segment < staticcall vault.segment_count(), "configurator: unknown segment"


@internal
def _write_params(market: uint256, segment: uint256, params: IMarginVault.MarketParams):
    assert params.mm_ratio > 0 and params.mm_ratio < params.im_ratio and params.im_ratio <= constants.WAD, (
        "configurator: bad margin ratios"
    )
    assert params.taker_fee_bps <= MAX_FEE_BPS and params.maker_fee_bps <= MAX_FEE_BPS, "configurator: fee too high"
    assert params.price_band_bps > 0 and params.price_band_bps <= MAX_BAND_BPS, "configurator: bad price band"
    assert params.max_open_interest > 0 and params.max_open_interest <= constants.MASK_48, (
        "configurator: bad open interest cap"
    )
    # in units of 10,000 quote tokens; 0 keeps margin flat in size
    assert params.size_knee <= constants.MASK_16, "configurator: bad size knee"

    packed: IMarginVault.MarketParams = params
    packed.segment = segment
    extcall vault.set_market_config(market, packing._pack_config(packed))
    log MarketParamsSet(
        market=market,
        im_ratio=params.im_ratio,
        mm_ratio=params.mm_ratio,
        taker_fee_bps=params.taker_fee_bps,
        maker_fee_bps=params.maker_fee_bps,
        price_band_bps=params.price_band_bps,
        max_open_interest=params.max_open_interest,
        size_knee=params.size_knee,
    )
