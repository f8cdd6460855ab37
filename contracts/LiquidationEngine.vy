# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize gas
"""
@title LiquidationEngine
@notice Permissionless liquidation of MarginVault accounts below maintenance margin.
        Incremental: at most `close_factor` of a position per call while the account is
        above `full_close_tier` x MM; the whole position below it or for dust. Priced by a
        Dutch auction: the liquidator takes the position at mark x (1 - d) for a long
        (mark x (1 + d) for a short), d growing linearly from `auction_start_discount` to
        `auction_max_discount` over `auction_duration` since the account was flagged.
        Loss waterfall: account collateral -> segment pool -> backstop -> auto-deleveraging
        (ADL) of profitable opposite positions; every step emits an event.
@dev Partial liquidations never lower the account's equity/MM ratio: the discount is capped
     at equity x mm_ratio / MM - penalty (see DESIGN.md, "Keeper economics").
"""

from interfaces import IMarginVault
from interfaces import IOracleAdapter
from interfaces import IInsurancePool

from snekmate.auth import access_control
from snekmate.utils import pausable

initializes: access_control
initializes: pausable

exports: (
    access_control.__interface__,
    pausable.paused,
)


# ---------------------------------------------------------------- constants

RISK_ADMIN_ROLE: public(constant(bytes32)) = keccak256("RISK_ADMIN_ROLE")
GUARDIAN_ROLE: public(constant(bytes32)) = keccak256("GUARDIAN_ROLE")

WAD: constant(uint256) = 10**18
MASK_32: constant(uint256) = 2**32 - 1
MASK_64: constant(uint256) = 2**64 - 1
MASK_80: constant(uint256) = 2**80 - 1
# safety margin on the ratio-preserving discount cap, against rounding (1 bp)
RATIO_BUFFER: constant(uint256) = 10**14


# ---------------------------------------------------------------- types

struct LiquidationParams:
    close_factor: uint256  # WAD
    full_close_tier: uint256  # WAD, fraction of MM
    auction_start_discount: uint256  # WAD
    auction_max_discount: uint256  # WAD
    liquidation_penalty: uint256  # WAD of closed notional
    auction_duration: uint256  # seconds
    min_liquidation_notional: uint256  # quote units
    keeper_fee_floor: uint256  # quote units


struct Plan:
    segment: uint256
    before: IMarginVault.AccountHealth
    mark: uint256
    amount: uint256  # base size closed
    price: uint256
    discount: uint256  # WAD, after the ratio guard
    penalty: uint256  # quote units, to the segment pool
    keeper_fee: uint256  # quote units, top-up to the keeper fee floor
    full_close: bool  # the whole position is closed
    guard: bool  # the account keeps positions and positive equity: its equity/MM must not fall


# ---------------------------------------------------------------- storage

vault: public(immutable(IMarginVault))
NOTIONAL_SCALE: immutable(uint256)
oracle: public(immutable(IOracleAdapter))

# Two packed words so that a liquidation reads its parameters with two SLOADs:
# word 0: close factor | full-close tier | auction start | auction max    (u64 WAD each)
# word 1: penalty u64 | auction duration u32 | min notional u80 | keeper fee floor u80
_params0: uint256
_params1: uint256

# (owner, segment) => timestamp the account was flagged liquidatable (0 = not flagged)
flagged_at: public(HashMap[address, HashMap[uint256, uint256]])


# ---------------------------------------------------------------- events

event Flagged:
    owner: indexed(address)
    segment: indexed(uint256)
    flagged_by: indexed(address)

event Unflagged:
    owner: indexed(address)
    segment: indexed(uint256)

event Liquidated:
    owner: indexed(address)
    liquidator: indexed(address)
    market: indexed(uint256)
    size: uint256
    price: uint256
    mark: uint256
    discount: uint256
    penalty: uint256
    keeper_fee: uint256
    full_close: bool

event Deleveraged:
    owner: indexed(address)
    counterparty: indexed(address)
    market: indexed(uint256)
    size: uint256
    price: uint256
    mark: uint256
    socialized_loss: uint256
    keeper: address
    # uPnL x leverage of the counterparty when chosen: with the events of the block anyone
    # can check that keepers took the best-ranked counterparties first
    counterparty_score: uint256

event BadDebtSettled:
    owner: indexed(address)
    segment: indexed(uint256)
    unpaid: uint256

event ParamsSet:
    params: LiquidationParams


# ---------------------------------------------------------------- constructor

@deploy
def __init__(vault_: IMarginVault, oracle_: IOracleAdapter, params: LiquidationParams):
    """
    @param vault_ The margin vault (grants this engine its ENGINE_ROLE).
    @param oracle_ The oracle adapter the vault uses.
    @param params Initial liquidation parameters.
    """
    access_control.__init__()
    pausable.__init__()
    vault = vault_
    NOTIONAL_SCALE = staticcall vault_.notional_scale()
    oracle = oracle_
    self._set_params(params)
    access_control._grant_role(RISK_ADMIN_ROLE, msg.sender)
    access_control._grant_role(GUARDIAN_ROLE, msg.sender)


# ---------------------------------------------------------------- admin

@external
def set_params(params: LiquidationParams):
    """
    @notice Update the liquidation parameters (risk admin, behind the timelock).
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    self._set_params(params)


@external
def pause():
    """
    @notice Stop liquidations and deleveraging (guardian only; e.g. during an oracle incident).
    """
    access_control._check_role(GUARDIAN_ROLE, msg.sender)
    pausable._pause()


@external
def unpause():
    """
    @notice Resume liquidations (admin only).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    pausable._unpause()


# ---------------------------------------------------------------- keepers

@external
def flag(owner: address, segment: uint256):
    """
    @notice Start the auction clock of an account that is liquidatable now.
    @param owner The account owner.
    @param segment The account's segment.
    """
    pausable._require_not_paused()
    health: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    assert health.mm > 0 and health.equity < convert(health.mm, int256), "engine: account healthy"
    assert self.flagged_at[owner][segment] == 0, "engine: already flagged"
    self.flagged_at[owner][segment] = block.timestamp
    log Flagged(owner=owner, segment=segment, flagged_by=msg.sender)


@external
def unflag(owner: address, segment: uint256):
    """
    @notice Clear the auction clock of an account that has recovered (equity >= MM), so
            that a later flag starts the auction anew.
    """
    assert self.flagged_at[owner][segment] != 0, "engine: not flagged"
    health: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    assert health.equity >= convert(health.mm, int256), "engine: still liquidatable"
    self._clear_flag(owner, segment)


@external
def liquidate(owner: address, market: uint256, size: uint256) -> uint256:
    """
    @notice Take over up to `size` of owner's position in `market` at the auction price.
            The caller must have a margin account in the market's segment and meet IM after.
    @param owner The liquidatable account's owner.
    @param market The market of the position.
    @param size Maximum base size to take over (18 decimals).
    @return uint256 The base size actually closed.
    """
    pausable._require_not_paused()
    assert owner != msg.sender, "engine: self-liquidation"
    config: IMarginVault.MarketParams = staticcall vault.market(market)
    segment: uint256 = config.segment
    started: uint256 = self.flagged_at[owner][segment]
    plan: Plan = self._plan(owner, market, size, config, started)
    if started == 0:
        self.flagged_at[owner][segment] = block.timestamp
        log Flagged(owner=owner, segment=segment, flagged_by=msg.sender)

    after: IMarginVault.AccountHealth = extcall vault.transfer_position(
        owner, msg.sender, market, plan.amount, plan.price, plan.penalty, plan.keeper_fee, True, plan.mark
    )
    if after.mm == 0:
        self._clear_flag(owner, segment)
        if after.collateral < 0:
            unpaid: uint256 = extcall vault.cover_bad_debt(owner, segment)
            assert unpaid == 0, "engine: deficit exceeds cover, deleverage"
            log BadDebtSettled(owner=owner, segment=segment, unpaid=0)
    else:
        if plan.guard:
            # DESIGN.md invariant 4: after.equity / after.mm >= before.equity / before.mm
            assert after.equity * convert(plan.before.mm, int256) >= plan.before.equity * convert(after.mm, int256), "engine: margin ratio lowered"
        if after.equity >= convert(after.mm, int256):
            self._clear_flag(owner, segment)

    log Liquidated(
        owner=owner,
        liquidator=msg.sender,
        market=market,
        size=plan.amount,
        price=plan.price,
        mark=plan.mark,
        discount=plan.discount,
        penalty=plan.penalty,
        keeper_fee=plan.keeper_fee,
        full_close=plan.full_close,
    )
    return plan.amount


@external
def deleverage(owner: address, market: uint256, counterparty: address, size: uint256) -> uint256:
    """
    @notice Auto-deleveraging, the last step of the loss waterfall: close up to `size` of a
            profitable opposite position of `counterparty` against owner's position at the
            owner's bankruptcy price. Allowed only while owner's deficit exceeds what the
            segment pool and the backstop can cover, or after the auction ended with nobody
            taking the position. Keepers pick counterparties by uPnL x leverage (see
            backstop/keeper.py); the engine checks side, profit and sizes.
    @param owner The bankrupt (or unliquidated) account.
    @param market The market to deleverage.
    @param counterparty The profitable opposite position's owner.
    @param size Maximum base size to close.
    @return uint256 The base size closed.
    """
    pausable._require_not_paused()
    assert size > 0, "engine: zero size"
    assert counterparty != owner, "engine: self-deleverage"
    config: IMarginVault.MarketParams = staticcall vault.market(market)
    segment: uint256 = config.segment
    before: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    assert before.mm > 0, "engine: no position"
    position: int256 = 0
    entry: int256 = 0
    position, entry = staticcall vault.position(owner, market)
    assert position != 0, "engine: no position"
    opposite: int256 = 0
    opposite_entry: int256 = 0
    opposite, opposite_entry = staticcall vault.position(counterparty, market)
    assert opposite != 0 and (opposite > 0) != (position > 0), "engine: counterparty not opposite"
    mark: uint256 = staticcall oracle.price(market)
    profit: int256 = self._floor_div(opposite * convert(mark, int256), convert(NOTIONAL_SCALE, int256)) - opposite_entry
    assert profit > 0, "engine: counterparty not profitable"
    score: uint256 = self._adl_score(counterparty, segment, convert(profit, uint256))

    loss: uint256 = self._uncovered_loss(before, segment)
    started: uint256 = self.flagged_at[owner][segment]
    auction_over: bool = (
        started != 0
        and block.timestamp >= started + ((self._params1 >> 64) & MASK_32)
        and before.equity < convert(before.mm, int256)
    )
    assert loss > 0 or auction_over, "engine: no unpaid deficit"

    amount: uint256 = min(size, min(convert(abs(position), uint256), convert(abs(opposite), uint256)))
    # Spread the uncovered loss over the account's whole notional: once every position is
    # closed this way, the remaining deficit equals what the pools can still pay.
    haircut: uint256 = (loss * WAD + before.notional - 1) // before.notional
    price: uint256 = 0
    if position > 0:
        # no cap: after a collapse the bankruptcy price of a long can be many times the mark
        price = (mark * (WAD + haircut) + WAD - 1) // WAD
    else:
        # a short's loss is below its notional at mark, so this cap only guards the math
        price = mark * (WAD - min(haircut, WAD)) // WAD
    after: IMarginVault.AccountHealth = extcall vault.transfer_position(
        owner, counterparty, market, amount, price, 0, 0, False, mark
    )
    socialized: uint256 = amount * (price - mark if price > mark else mark - price) // NOTIONAL_SCALE
    log Deleveraged(
        owner=owner,
        counterparty=counterparty,
        market=market,
        size=amount,
        price=price,
        mark=mark,
        socialized_loss=socialized,
        keeper=msg.sender,
        counterparty_score=score,
    )
    if after.mm == 0:
        self._clear_flag(owner, segment)
        if after.collateral < 0:
            unpaid: uint256 = extcall vault.cover_bad_debt(owner, segment)
            log BadDebtSettled(owner=owner, segment=segment, unpaid=unpaid)
    return amount


@external
def settle_bad_debt(owner: address, segment: uint256) -> uint256:
    """
    @notice Retry the pool cover of a flat account that still has negative collateral
            (e.g. after the pool's per-block limit or a refill of the pools).
    @return uint256 The deficit still unpaid.
    """
    pausable._require_not_paused()
    unpaid: uint256 = extcall vault.cover_bad_debt(owner, segment)
    log BadDebtSettled(owner=owner, segment=segment, unpaid=unpaid)
    return unpaid


# ---------------------------------------------------------------- views

@external
@view
def adl_score(owner: address, market: uint256) -> uint256:
    """
    @notice The auto-deleveraging rank of owner's position in `market`: unrealized profit x
            account leverage (notional / equity), quote units; 0 if it is not profitable.
            Keepers deleverage the highest scores first (Hyperliquid / dYdX rule).
    """
    segment: uint256 = (staticcall vault.market(market)).segment
    size: int256 = 0
    entry: int256 = 0
    size, entry = staticcall vault.position(owner, market)
    mark: uint256 = staticcall oracle.price(market)
    profit: int256 = self._floor_div(size * convert(mark, int256), convert(NOTIONAL_SCALE, int256)) - entry
    if size == 0 or profit <= 0:
        return 0
    return self._adl_score(owner, segment, convert(profit, uint256))


@external
@view
def params() -> LiquidationParams:
    """
    @notice The current liquidation parameters.
    """
    return self._unpack_params()


@external
@view
def auction_discount(owner: address, segment: uint256) -> uint256:
    """
    @notice The Dutch-auction discount (WAD) an account would be liquidated at now
            (before the partial-tier cap); the start discount if it is not flagged yet.
    """
    started: uint256 = self.flagged_at[owner][segment]
    elapsed: uint256 = 0
    if started != 0:
        elapsed = block.timestamp - started
    return self._auction_discount(self._params0, self._params1, elapsed)


@external
@view
def liquidation_quote(owner: address, market: uint256, size: uint256) -> (uint256, uint256, uint256, bool):
    """
    @notice What `liquidate(owner, market, size)` would do now:
            (size closed, price, liquidator's discount profit at mark, full close).
            Reverts like `liquidate` for healthy accounts.
    """
    config: IMarginVault.MarketParams = staticcall vault.market(market)
    plan: Plan = self._plan(owner, market, size, config, self.flagged_at[owner][config.segment])
    profit: uint256 = plan.amount * (plan.mark - plan.price if plan.price < plan.mark else plan.price - plan.mark) // NOTIONAL_SCALE
    return plan.amount, plan.price, profit, plan.full_close


# ---------------------------------------------------------------- internal

@internal
@pure
def _auction_discount(p0: uint256, p1: uint256, elapsed: uint256) -> uint256:
    start: uint256 = (p0 >> 128) & MASK_64
    ceiling: uint256 = p0 >> 192
    duration: uint256 = (p1 >> 64) & MASK_32
    if elapsed >= duration:
        return ceiling
    return start + (ceiling - start) * elapsed // duration


@internal
@view
def _plan(
    owner: address, market: uint256, size: uint256, config: IMarginVault.MarketParams, flagged: uint256
) -> Plan:
    """
    @dev How much to close, at which price, with which penalty and keeper fee:
         - dust (position notional < min_liquidation_notional): the whole position, whatever
           `size` says, so no dust is left behind;
         - equity < full_close_tier x MM: up to the whole position;
         - otherwise up to close_factor of it, or all of it if the rest would be dust.
         While the account keeps other positions and positive equity (the guard), discount and
         penalty are capped so that equity / MM cannot fall (invariant 4). The keeper fee
         floor is topped up once per position, by the call that closes it, and only when
         the account is then flat or bankrupt (never at the expense of the guard).
    """
    assert size > 0, "engine: zero size"
    before: IMarginVault.AccountHealth = staticcall vault.account_health(owner, config.segment)
    assert before.mm > 0 and before.equity < convert(before.mm, int256), "engine: account healthy"
    position: int256 = 0
    entry: int256 = 0
    position, entry = staticcall vault.position(owner, market)
    assert position != 0, "engine: no position"

    p0: uint256 = self._params0
    p1: uint256 = self._params1
    mark: uint256 = staticcall oracle.price(market)
    held: uint256 = convert(abs(position), uint256)
    min_notional: uint256 = (p1 >> 96) & MASK_80

    amount: uint256 = held
    if held * mark // NOTIONAL_SCALE >= min_notional:
        if before.equity * convert(WAD, int256) < convert((p0 >> 64) & MASK_64, int256) * convert(before.mm, int256):
            amount = min(size, held)
        else:
            amount = min(size, held * (p0 & MASK_64) // WAD)
            if (held - amount) * mark // NOTIONAL_SCALE < min_notional:
                amount = held
    assert amount > 0, "engine: nothing to close"
    full_close: bool = amount == held
    # the account is flat after this call iff this position is all it holds
    guard: bool = before.equity > 0 and not (
        full_close and before.notional == (held * mark + NOTIONAL_SCALE - 1) // NOTIONAL_SCALE
    )

    # an account not flagged yet is flagged by this call: it starts at the start discount
    elapsed: uint256 = 0
    if flagged != 0:
        elapsed = block.timestamp - flagged
    discount: uint256 = self._auction_discount(p0, p1, elapsed)
    penalty_rate: uint256 = p1 & MASK_64
    if guard:
        # Closing notional n at discount d and penalty p costs n (d + p) of equity and frees
        # n x mm_ratio of MM: equity / MM does not fall iff d + p <= equity x mm_ratio / MM.
        room: uint256 = convert(before.equity, uint256) * config.mm_ratio // before.mm
        room = room - RATIO_BUFFER if room > RATIO_BUFFER else 0
        penalty_rate = min(penalty_rate, room)
        discount = min(discount, room - penalty_rate)
    price: uint256 = self._liquidation_price(mark, discount, position > 0)

    reward: uint256 = amount * (mark - price if position > 0 else price - mark) // NOTIONAL_SCALE
    keeper_fee: uint256 = 0
    keeper_floor: uint256 = p1 >> 176
    if full_close and not guard and reward < keeper_floor:
        keeper_fee = keeper_floor - reward
    # The penalty comes only out of equity left after the discount and the keeper fee (less
    # 2 units for the rounding of realized vs marked PnL): it never creates bad debt that
    # the pool would pay to itself.
    penalty: uint256 = amount * mark // NOTIONAL_SCALE * penalty_rate // WAD
    remaining: int256 = before.equity - convert(reward + keeper_fee, int256) - 2
    if remaining < convert(penalty, int256):
        penalty = convert(max(remaining, 0), uint256)
    return Plan(
        segment=config.segment,
        before=before,
        mark=mark,
        amount=amount,
        price=price,
        discount=discount,
        penalty=penalty,
        keeper_fee=keeper_fee,
        full_close=full_close,
        guard=guard,
    )


@internal
@pure
def _liquidation_price(mark: uint256, discount: uint256, is_long: bool) -> uint256:
    # rounded against the liquidated account
    if is_long:
        return mark * (WAD - discount) // WAD
    return (mark * (WAD + discount) + WAD - 1) // WAD


@internal
@view
def _uncovered_loss(health: IMarginVault.AccountHealth, segment: uint256) -> uint256:
    """
    @dev The part of the account's deficit that the segment pool (with the backstop behind
         it) cannot cover now.
    """
    if health.equity >= 0:
        return 0
    deficit: uint256 = convert(-health.equity, uint256)
    pool: address = staticcall vault.segment_pool(segment)
    capacity: uint256 = 0
    if pool != empty(address):
        capacity = staticcall IInsurancePool(pool).max_cover()
    if deficit <= capacity:
        return 0
    return deficit - capacity


@internal
@view
def _adl_score(owner: address, segment: uint256, profit: uint256) -> uint256:
    health: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    equity: uint256 = convert(max(health.equity, 1), uint256)
    return profit * health.notional // equity


@internal
def _clear_flag(owner: address, segment: uint256):
    if self.flagged_at[owner][segment] != 0:
        self.flagged_at[owner][segment] = 0
        log Unflagged(owner=owner, segment=segment)


@internal
def _set_params(params: LiquidationParams):
    assert params.close_factor > 0 and params.close_factor <= WAD, "engine: bad close factor"
    assert params.full_close_tier <= WAD, "engine: bad full-close tier"
    assert params.auction_start_discount <= params.auction_max_discount, "engine: bad auction"
    assert params.auction_max_discount < WAD // 2, "engine: bad auction"
    assert params.auction_duration > 0 and params.auction_duration <= MASK_32, "engine: bad auction"
    assert params.liquidation_penalty < WAD // 10, "engine: bad penalty"
    assert params.min_liquidation_notional <= MASK_80 and params.keeper_fee_floor <= MASK_80, "engine: bad notional"
    self._params0 = (
        params.close_factor
        | (params.full_close_tier << 64)
        | (params.auction_start_discount << 128)
        | (params.auction_max_discount << 192)
    )
    self._params1 = (
        params.liquidation_penalty
        | (params.auction_duration << 64)
        | (params.min_liquidation_notional << 96)
        | (params.keeper_fee_floor << 176)
    )
    log ParamsSet(params=params)


@internal
@view
def _unpack_params() -> LiquidationParams:
    p0: uint256 = self._params0
    p1: uint256 = self._params1
    return LiquidationParams(
        close_factor=p0 & MASK_64,
        full_close_tier=(p0 >> 64) & MASK_64,
        auction_start_discount=(p0 >> 128) & MASK_64,
        auction_max_discount=p0 >> 192,
        liquidation_penalty=p1 & MASK_64,
        auction_duration=(p1 >> 64) & MASK_32,
        min_liquidation_notional=(p1 >> 96) & MASK_80,
        keeper_fee_floor=p1 >> 176,
    )


@internal
@pure
def _floor_div(numerator: int256, denominator: int256) -> int256:
    if numerator >= 0:
        return numerator // denominator
    return -((-numerator + denominator - 1) // denominator)
