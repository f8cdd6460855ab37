# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title VaultLens
@notice Stateless read-only views of MarginVault for keepers, scripts and dashboards:
        equity, margin requirements, liquidatability (one account or a batch), unpacked
        market parameters, open interest, accrued fees and penalties, segment cash. They are
        computed from the vault's own health check (`account_health`) and its raw packed
        words, so the lens can never disagree with what the vault enforces.
@dev Nothing here is used on chain by Backstop; keeping it out of MarginVault leaves the
     vault room under EIP-170 (Curve's ControllerView plays the same role).
"""

from interfaces import IMarginVault
from interfaces import IVaultLens

implements: IVaultLens

import packing


# ---------------------------------------------------------------- constants

MAX_BATCH: public(constant(uint256)) = 128


# ---------------------------------------------------------------- storage

vault: public(immutable(IMarginVault))


# ---------------------------------------------------------------- constructor

@deploy
def __init__(vault_: IMarginVault):
    """
    @param vault_ The vault read here.
    """
    vault = vault_


# ---------------------------------------------------------------- external

@external
@view
def equity(owner: address, segment: uint256) -> int256:
    """
    @notice Collateral plus unrealized PnL at the oracle price (quote units).
    @param owner The account's owner.
    @param segment The account's segment.
    @return int256 The equity.
    """
    return (staticcall vault.account_health(owner, segment)).equity


@external
@view
def margin_requirements(owner: address, segment: uint256) -> (uint256, uint256):
    """
    @notice Initial and maintenance margin of the account at the oracle price.
    @param owner The account's owner.
    @param segment The account's segment.
    @return uint256 Initial margin (quote units).
    @return uint256 Maintenance margin (quote units).
    """
    health: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    return health.im, health.mm


@external
@view
def free_margin(owner: address, segment: uint256) -> int256:
    """
    @notice min(collateral, equity) - IM: what the account can still withdraw or risk
            (unrealized profit backs nothing new). Negative: below initial margin.
    @param owner The account's owner.
    @param segment The account's segment.
    @return int256 Free margin (quote units).
    """
    health: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    return min(health.collateral, health.equity) - convert(health.im, int256)


@external
@view
def is_liquidatable(owner: address, segment: uint256) -> bool:
    """
    @notice Whether the account holds positions and its equity is below maintenance margin.
    @param owner The account's owner.
    @param segment The account's segment.
    @return bool True when a keeper may liquidate it.
    """
    return self._is_liquidatable(owner, segment)


@external
@view
def health_of(
    owners: DynArray[address, MAX_BATCH], segment: uint256
) -> DynArray[IMarginVault.AccountHealth, MAX_BATCH]:
    """
    @notice Collateral, equity, IM, MM and notional of many accounts of one segment.
    @param owners Up to 128 owners.
    @param segment The segment.
    @return DynArray[IMarginVault.AccountHealth, 128] One entry per owner, in order.
    """
    result: DynArray[IMarginVault.AccountHealth, MAX_BATCH] = []
    for owner: address in owners:
        result.append(staticcall vault.account_health(owner, segment))
    return result


@external
@view
def liquidatable_of(owners: DynArray[address, MAX_BATCH], segment: uint256) -> DynArray[bool, MAX_BATCH]:
    """
    @notice `is_liquidatable` of many accounts of one segment.
    @param owners Up to 128 owners.
    @param segment The segment.
    @return DynArray[bool, 128] One flag per owner, in order.
    """
    result: DynArray[bool, MAX_BATCH] = []
    for owner: address in owners:
        result.append(self._is_liquidatable(owner, segment))
    return result


@external
@view
def market(market_id: uint256) -> IMarginVault.MarketParams:
    """
    @notice The parameters of a listed market (reverts "vault: unknown market" otherwise).
    @param market_id The market id.
    @return IMarginVault.MarketParams Segment, margin ratios, fees, price band, OI cap.
    """
    return packing._unpack_config(staticcall vault.market_config(market_id))


@external
@view
def segment_markets(segment: uint256) -> DynArray[uint256, packing.MAX_MARKETS_PER_SEGMENT]:
    """
    @notice The market ids of a segment, in listing order.
    @param segment The segment.
    @return DynArray[uint256, 16] The market ids.
    """
    listed: uint256 = staticcall vault.segment_listing(segment)
    result: DynArray[uint256, packing.MAX_MARKETS_PER_SEGMENT] = []
    for i: uint256 in range(packing.MAX_MARKETS_PER_SEGMENT):
        if i >= packing._market_count(listed):
            break
        result.append(packing._market_at(listed, i))
    return result


@external
@view
def open_interest(market_id: uint256) -> uint256:
    """
    @notice Total long (= total short) base size of a market, 18 decimals.
    @param market_id The market id.
    @return uint256 The open interest.
    """
    open_interest: uint256 = 0
    fees: uint256 = 0
    penalties: uint256 = 0
    open_interest, fees, penalties = packing._unpack_market_state(staticcall vault.market_state(market_id))
    return open_interest


@external
@view
def accrued_fees(market_id: uint256) -> uint256:
    """
    @notice Trading fees accrued by a market and not yet swept (quote units).
    @param market_id The market id.
    @return uint256 The accrued fees.
    """
    open_interest: uint256 = 0
    fees: uint256 = 0
    penalties: uint256 = 0
    open_interest, fees, penalties = packing._unpack_market_state(staticcall vault.market_state(market_id))
    return fees


@external
@view
def accrued_penalties(market_id: uint256) -> uint256:
    """
    @notice Liquidation penalties accrued by a market for its segment's pool (quote units).
    @param market_id The market id.
    @return uint256 The accrued penalties.
    """
    open_interest: uint256 = 0
    fees: uint256 = 0
    penalties: uint256 = 0
    open_interest, fees, penalties = packing._unpack_market_state(staticcall vault.market_state(market_id))
    return penalties


@external
@view
def funding(market_id: uint256) -> (int256, int256, uint256):
    """
    @notice The funding state of a market as of its last fill: the funding index (quote price
            units per unit of size; a long has paid its rise since it opened), the time-weighted
            premium (1e18 = 100% per 8 h, before the clamp) and the time of the last fill.
    @param market_id The market.
    @return (int256, int256, uint256) Index, premium and last update.
    """
    return packing._unpack_funding(staticcall vault.market_funding(market_id))


@external
@view
def segment_cash(segment: uint256) -> (uint256, uint256):
    """
    @notice The quote tokens the vault holds for `segment` and its withdrawal gate.
    @param segment The segment.
    @return uint256 The segment's cash (quote units).
    @return uint256 Withdrawals revert before this timestamp (0: never gated).
    """
    return packing._unpack_segment_state(staticcall vault.segment_state(segment))


# ---------------------------------------------------------------- internal

@internal
@view
def _is_liquidatable(owner: address, segment: uint256) -> bool:
    if staticcall vault.account(owner, segment) >> 128 == 0:
        return False  # no open position: nothing to liquidate, even with negative collateral
    health: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    return health.equity < convert(health.mm, int256)
