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


# What the stress signal reads from the segment pool, the backstop, its liquidator and the
# volatility model (docs/pools.md).
interface IStressPool:
    def managed_assets() -> uint256: view
    def target_size() -> uint256: view
    def floor_size() -> uint256: view
    def stressed() -> bool: view
    def backstop() -> address: view

interface IStressBackstop:
    def draw_capacity(member: address) -> uint256: view
    def liquidator() -> address: view

interface IStressLiquidator:
    def inventory() -> (uint256, uint256, uint256): view
    def caps() -> (uint256, uint256, uint256, uint256): view

interface IStressRisk:
    def effective_variance(market: uint256) -> uint256: view


# ---------------------------------------------------------------- types

struct StressSignal:
    pool_assets: uint256  # the segment pool's managed assets
    target: uint256
    floor: uint256
    coverage_bps: uint256  # pool_assets / target in bps (max_value without a target)
    stressed: bool  # below the floor at the pool's last refresh (the Stress event's flag)
    backstop_headroom: uint256  # what the pool could still draw from the backstop now
    liquidator_notional: uint256  # inventory of the liquidator of last resort (all its accounts)
    liquidator_cap: uint256  # its aggregate notional cap, quote units
    liquidator_lost: uint256  # its takeover losses in the current loss window
    max_variance: uint256  # highest effective variance (WAD per second) of the segment's markets (0: no model)


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


@external
@view
def stress(segment: uint256, risk: address) -> StressSignal:
    """
    @notice The stress signal of `segment` for keepers, LPs and other protocols: pool coverage
            against its target and floor, backstop draw headroom, the liquidator of last
            resort's inventory against its cap, and the forecast variance once margin follows
            volatility (RiskParams at `risk`; zero address: none).
    @param segment The segment.
    @param risk The RiskParams contract, or the zero address.
    @return StressSignal The signal (all zero without a segment pool).
    """
    signal: StressSignal = empty(StressSignal)
    pool_address: address = staticcall vault.segment_pool(segment)
    if pool_address == empty(address):
        return signal
    pool: IStressPool = IStressPool(pool_address)
    signal.pool_assets = staticcall pool.managed_assets()
    signal.target = staticcall pool.target_size()
    signal.floor = staticcall pool.floor_size()
    signal.coverage_bps = max_value(uint256)
    if signal.target > 0:
        signal.coverage_bps = signal.pool_assets * 10_000 // signal.target
    signal.stressed = staticcall pool.stressed()
    backstop: IStressBackstop = IStressBackstop(staticcall pool.backstop())
    signal.backstop_headroom = staticcall backstop.draw_capacity(pool_address)
    taker: address = staticcall backstop.liquidator()
    if taker != empty(address):
        managed: uint256 = 0
        signal.liquidator_notional, signal.liquidator_lost, managed = staticcall IStressLiquidator(taker).inventory()
        market_cap: uint256 = 0
        total_cap: uint256 = 0
        loss_limit: uint256 = 0
        loss_window: uint256 = 0
        market_cap, total_cap, loss_limit, loss_window = staticcall IStressLiquidator(taker).caps()
        signal.liquidator_cap = managed * total_cap // 10_000
    if risk != empty(address):
        listed: uint256 = staticcall vault.segment_listing(segment)
        for i: uint256 in range(packing.MAX_MARKETS_PER_SEGMENT):
            if i >= packing._market_count(listed):
                break
            variance: uint256 = staticcall IStressRisk(risk).effective_variance(packing._market_at(listed, i))
            signal.max_variance = max(signal.max_variance, variance)
    return signal


# ---------------------------------------------------------------- internal

@internal
@view
def _is_liquidatable(owner: address, segment: uint256) -> bool:
    # no open position (mm == 0): nothing to liquidate, even with negative collateral; the
    # engine's own test (LiquidationEngine._plan)
    health: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    return health.mm > 0 and health.equity < convert(health.mm, int256)
