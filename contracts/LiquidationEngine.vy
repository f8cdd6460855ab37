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
        (ADL) of profitable opposite positions; every step emits an event. A position nobody
        took by the auction's end goes to the backstop's liquidator of last resort
        (`takeover`, within its caps) before ADL may close it against winners; that
        liquidator's own account is liquidatable by anyone at any time on the same auction
        schedule, so keepers unwind its inventory.
@dev Keeper economics (docs/liquidation.md): a call that leaves the account open never lowers
     its equity/MM ratio beyond the keeper fee floor (the discount is capped at equity x
     mm_ratio / MM and the pool's penalty yields first); the account's own equity pays the
     discount, the penalty and the fee, so a solvent account never becomes bad debt; a
     bankrupt account pays the keeper the fee floor only, so waiting into bankruptcy never pays.
"""

from interfaces import IMarginVault
from interfaces import IOracleAdapter
from interfaces import IInsurancePool
from interfaces import IBackstopLiquidator

from snekmate.auth import access_control

import constants
import packing
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

# safety margin on the ratio-preserving discount cap, against rounding (1 bp)
RATIO_BUFFER: constant(uint256) = 10**14
# quote units of slack for the rounding of realized against marked PnL (each side rounds once)
_ROUNDING_SLACK: constant(uint256) = 2
# a flag older than this many auction durations since it was last seen is a past episode
_EPISODE_GAP_DURATIONS: constant(uint256) = 2
# how long withdrawals from a segment stay gated after a deficit the pools cannot pay was seen
WITHDRAWAL_GATE: public(constant(uint256)) = 3_600
# items per liquidate_batch: 64 full closes fit well inside a 30M-gas block
MAX_BATCH: public(constant(uint256)) = 64
# margin the liquidator of last resort posts per unit of the IM it adds (x2: room for the size
# knee and the move before keepers unwind it; the surplus comes back with `reclaim`)
_TAKEOVER_MARGIN_MULTIPLE: constant(uint256) = 2


# ---------------------------------------------------------------- types

struct LiquidationParams:
    close_factor: uint256  # constants.WAD
    full_close_tier: uint256  # constants.WAD, fraction of MM
    auction_start_discount: uint256  # constants.WAD
    auction_max_discount: uint256  # constants.WAD
    liquidation_penalty: uint256  # constants.WAD of closed notional
    auction_duration: uint256  # seconds
    min_liquidation_notional: uint256  # quote units
    keeper_fee_floor: uint256  # quote units


struct LiquidationOrder:
    owner: address
    market: uint256
    size: uint256  # maximum base size to take over (18 decimals)


struct Plan:
    segment: uint256
    before: IMarginVault.AccountHealth
    mark: uint256
    amount: uint256  # base size closed
    price: uint256
    discount: uint256  # constants.WAD, after the ratio guard
    penalty: uint256  # quote units, to the segment pool
    keeper_fee: uint256  # quote units, top-up to the keeper fee floor
    full_close: bool  # the whole position is closed
    guard: bool  # the account keeps positions and positive equity: its equity/MM must not fall
    elapsed: uint256  # seconds into the auction (0 for an account this call flags)
    unwind: bool  # the liquidator of last resort's account above MM: offered back, no penalty


# ---------------------------------------------------------------- storage

vault: public(immutable(IMarginVault))
NOTIONAL_SCALE: immutable(uint256)
oracle: public(immutable(IOracleAdapter))

# Two packed words so that a liquidation reads its parameters with two SLOADs:
# word 0: close factor | full-close tier | auction start | auction max    (u64 constants.WAD each)
# word 1: penalty u64 | auction duration u32 | min notional u80 | keeper fee floor u80
_params0: uint256
_params1: uint256

# (owner, segment) => started (low 64) | last seen liquidatable (next 64) of the current
# liquidatable episode; see _episode
_flags: HashMap[address, HashMap[uint256, uint256]]

# the backstop's liquidator of last resort (empty: none; ADL follows an unsold auction)
liquidator: public(IBackstopLiquidator)


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

event TakenOver:
    owner: indexed(address)
    market: indexed(uint256)
    liquidator: indexed(address)
    size: uint256
    price: uint256
    margin: uint256
    keeper: address

event LiquidatorSet:
    liquidator: indexed(address)

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
def set_liquidator(liquidator_: IBackstopLiquidator):
    """
    @notice The backstop's liquidator of last resort (zero: none). It must grant this engine
            its TAKEOVER_ROLE. Its account in the vault is always open to `liquidate`.
    @dev DEFAULT_ADMIN_ROLE (the timelock).
    @param liquidator_ The BackstopLiquidator.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self.liquidator = liquidator_
    log LiquidatorSet(liquidator=liquidator_.address)


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
    @notice Start the auction clock of an account that is liquidatable now. Also gates the
            segment's withdrawals if the account's deficit exceeds what the pools can pay.
    @param owner The account owner.
    @param segment The account's segment.
    """
    pausable._require_not_paused()
    health: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    assert health.mm > 0 and health.equity < convert(health.mm, int256), "engine: account healthy"
    started: uint256 = 0
    seen: uint256 = 0
    started, seen = self._episode(owner, segment)
    assert started == 0, "engine: already flagged"
    self._start_episode(owner, segment, msg.sender)
    if self._uncovered_loss(health, segment) > 0:
        self._gate(segment)


@external
def unflag(owner: address, segment: uint256):
    """
    @notice Clear the auction clock of an account that has recovered (equity >= MM), so
            that a later flag starts the auction anew.
    @param owner The account owner.
    @param segment The account's segment.
    """
    assert self._flags[owner][segment] != 0, "engine: not flagged"
    health: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    assert health.equity >= convert(health.mm, int256), "engine: still liquidatable"
    self._clear_flag(owner, segment)


@external
def liquidate(owner: address, market: uint256, size: uint256) -> uint256:
    """
    @notice Take over up to `size` of owner's position in `market` at the auction price.
            The caller must have a margin account in the market's segment and meet IM after.
            A bankrupt account is closed too when the pools cannot pay all of its deficit:
            they pay what they can and the rest is left to `deleverage` (no dead end).
            The first liquidation of an episode flags the account itself (no separate `flag`).
    @param owner The liquidatable account's owner.
    @param market The market of the position.
    @param size Maximum base size to take over (18 decimals).
    @return uint256 The base size actually closed.
    """
    return self._liquidate(msg.sender, owner, market, size)


@external
@reentrant
def liquidate_batch(orders: DynArray[LiquidationOrder, MAX_BATCH]) -> DynArray[uint256, MAX_BATCH]:
    """
    @notice Liquidate many positions in one transaction, the caller taking each over as
            `liquidate` would. An item that would revert (a lost race, a healthy or flat
            account, a stale price, the caller's margin) is skipped, not fatal: keepers send
            whole blocks' worth of work without one failure wasting the rest.
    @dev Each item is a call to this contract's `liquidate_for`, which holds the reentrancy
         lock itself; this function only dispatches and touches no storage, hence @reentrant.
    @param orders (owner, market, size) items, at most MAX_BATCH.
    @return DynArray[uint256, MAX_BATCH] The base size closed per item (0 = skipped).
    """
    closed: DynArray[uint256, MAX_BATCH] = []
    for order: LiquidationOrder in orders:
        ok: bool = False
        result: Bytes[32] = b""
        ok, result = raw_call(
            self,
            abi_encode(
                msg.sender, order.owner, order.market, order.size,
                method_id=method_id("liquidate_for(address,address,uint256,uint256)"),
            ),
            max_outsize=32,
            revert_on_failure=False,
        )
        if ok:
            closed.append(abi_decode(result, uint256))
        else:
            closed.append(0)
    return closed


@external
def liquidate_for(liquidator: address, owner: address, market: uint256, size: uint256) -> uint256:
    """
    @notice One item of `liquidate_batch` (callable only by this contract).
    @param liquidator The batch's caller, who takes the position over.
    @param owner The liquidatable account's owner.
    @param market The market of the position.
    @param size Maximum base size to take over (18 decimals).
    @return uint256 The base size actually closed.
    """
    assert msg.sender == self, "engine: batch only"
    return self._liquidate(liquidator, owner, market, size)


@external
def takeover(owner: address, market: uint256, size: uint256) -> uint256:
    """
    @notice Give a position nobody took by the end of its auction to the backstop's liquidator
            of last resort, at the auction's end price (as `liquidate` would price it for a
            keeper). Permissionless. Reverts "engine: takeover refused" when the liquidator's
            caps refuse it (the liquidator's `refusal` view says which): `deleverage` is
            open then.
    @param owner The liquidatable account, whose current episode's auction is over.
    @param market The market of the position.
    @param size Maximum base size to take over (18 decimals).
    @return uint256 The base size taken over.
    """
    pausable._require_not_paused()
    taker: IBackstopLiquidator = self.liquidator
    assert taker.address != empty(address), "engine: no liquidator"
    assert owner != taker.address, "engine: self-liquidation"
    config: IMarginVault.MarketParams = packing._unpack_config(staticcall vault.market_config(market))
    started: uint256 = 0
    seen: uint256 = 0
    started, seen = self._episode(owner, config.segment)
    assert started != 0 and block.timestamp >= started + ((self._params1 >> 64) & constants.MASK_32), (
        "engine: auction not over"
    )
    plan: Plan = self._plan(owner, market, size, config, started)
    market_notional: uint256 = 0
    notional: uint256 = 0
    margin: uint256 = 0
    market_notional, notional, margin = self._takeover_terms(taker.address, owner, market, plan.amount, plan.mark, config)
    assert extcall taker.fund_takeover(config.segment, market_notional, notional, margin), "engine: takeover refused"
    # no IM check on the liquidator of last resort: its caps are its risk limits, and a takeover that
    # reverted for margin would leave ADL waiting on it ("engine: takeover open") with no way forward
    self._execute(taker.address, owner, market, plan, started, seen, False)
    log TakenOver(
        owner=owner, market=market, liquidator=taker.address, size=plan.amount, price=plan.price, margin=margin,
        keeper=msg.sender,
    )
    return plan.amount


@external
def deleverage(owner: address, market: uint256, counterparty: address, size: uint256) -> uint256:
    """
    @notice Auto-deleveraging, the last step of the loss waterfall. Allowed only while owner's
            deficit exceeds what the segment pool and the backstop can still pay, or after a
            full auction of the current liquidatable episode with nobody taking the position
            when the liquidator of last resort refuses it (none set, or past its caps).
            - owner holds a position in `market`: up to `size` of it is closed against the
              profitable opposite position of `counterparty`, at mark moved by as much of the
              uncovered loss as that counterparty can carry;
            - owner is flat with unpaid bad debt: `counterparty`'s profitable position in
              `market` (either side) gives up part of its profit to the deficit.
            Either way the counterparty loses at most its unrealized profit on what is closed
            and never more than its equity: ADL can only bring the bankrupt account to zero,
            never push anyone else below it. Keepers rank counterparties by adl_score.
    @param owner The bankrupt (or unliquidated) account.
    @param market The market to deleverage.
    @param counterparty The owner of the profitable position that absorbs the loss.
    @param size Maximum base size to close (ignored for a flat owner).
    @return uint256 The base size closed (or round-tripped, for a flat owner).
    """
    pausable._require_not_paused()
    assert size > 0, "engine: zero size"
    assert counterparty != owner, "engine: self-deleverage"
    config: IMarginVault.MarketParams = packing._unpack_config(staticcall vault.market_config(market))
    segment: uint256 = config.segment
    before: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    mark: uint256 = staticcall oracle.price(market)
    position: int256 = 0
    entry: int256 = 0
    position, entry = staticcall vault.position(owner, market)
    assert position != 0 or before.mm == 0, "engine: no position"
    assert position != 0 or before.collateral < 0, "engine: no unpaid deficit"
    opposite: int256 = 0
    opposite_entry: int256 = 0
    opposite, opposite_entry = staticcall vault.position(counterparty, market)
    if position != 0:
        assert opposite != 0 and (opposite > 0) != (position > 0), "engine: counterparty not opposite"
    profit: int256 = self._pnl(market, opposite, opposite_entry, mark)
    assert opposite != 0 and profit > 0, "engine: counterparty not profitable"
    theirs: IMarginVault.AccountHealth = staticcall vault.account_health(counterparty, segment)
    score: uint256 = convert(profit, uint256) * theirs.notional // convert(max(theirs.equity, 1), uint256)
    # what the counterparty can give without going below zero (rounding slack kept)
    solvent: uint256 = 0
    if theirs.equity > convert(_ROUNDING_SLACK, int256):
        solvent = convert(theirs.equity, uint256) - _ROUNDING_SLACK
    loss: uint256 = self._uncovered_loss(before, segment)
    held: uint256 = convert(abs(opposite), uint256)

    if before.mm == 0:
        # flat owner: a residual deficit no position can carry any more
        assert before.collateral < 0 and loss > 0, "engine: no unpaid deficit"
        take: uint256 = min(min(loss, convert(profit, uint256)), solvent)
        assert take > 0, "engine: counterparty cannot pay"
        # the smallest piece of the counterparty's position whose profit covers `take`
        amount: uint256 = min((held * take + convert(profit, uint256) - 1) // convert(profit, uint256), held)
        # round trip at mark: the piece moves to the owner with `take` as the fee and back at
        # the same price, so the counterparty realizes that piece's profit and pays `take`
        extcall vault.transfer_position(counterparty, owner, market, amount, mark, 0, take, False, mark)
        left: IMarginVault.AccountHealth = extcall vault.transfer_position(
            owner, counterparty, market, amount, mark, 0, 0, False, mark
        )
        self._gate(segment)
        log Deleveraged(
            owner=owner,
            counterparty=counterparty,
            market=market,
            size=amount,
            price=mark,
            mark=mark,
            socialized_loss=take,
            keeper=msg.sender,
            counterparty_score=score,
        )
        if left.collateral < 0:
            self._settle(owner, segment)
        return amount

    started: uint256 = 0
    seen: uint256 = 0
    started, seen = self._episode(owner, segment)
    auction_over: bool = (
        started != 0
        and block.timestamp >= started + ((self._params1 >> 64) & constants.MASK_32)
        and before.equity < convert(before.mm, int256)
    )
    assert loss > 0 or auction_over, "engine: no unpaid deficit"
    if loss == 0:
        assert self._takeover_refused(owner, market, position, mark, config), "engine: takeover open"
    if loss > 0:
        self._gate(segment)

    amount: uint256 = min(size, min(convert(abs(position), uint256), held))
    # the counterparty pays as much of the uncovered loss as its profit on the closed piece
    # and its equity allow (highest-ranked first): nothing is left for positions that no
    # opposite profit could carry, and nobody but the owner goes below zero
    take: uint256 = min(min(loss, convert(profit, uint256) * amount // held), solvent)
    step: uint256 = take * NOTIONAL_SCALE // amount
    price: uint256 = mark + step
    if position < 0:
        price = mark - step
    after: IMarginVault.AccountHealth = extcall vault.transfer_position(
        owner, counterparty, market, amount, price, 0, 0, False, mark
    )
    log Deleveraged(
        owner=owner,
        counterparty=counterparty,
        market=market,
        size=amount,
        price=price,
        mark=mark,
        socialized_loss=amount * step // NOTIONAL_SCALE,
        keeper=msg.sender,
        counterparty_score=score,
    )
    if after.mm == 0:
        self._clear_flag(owner, segment)
        if after.collateral < 0:
            self._settle(owner, segment)
    return amount


@external
def settle_bad_debt(owner: address, segment: uint256) -> uint256:
    """
    @notice Retry the pool cover of a flat account that still has negative collateral
            (e.g. after the pool's per-block limit or a refill of the pools).
    @param owner The account owner.
    @param segment The account's segment.
    @return uint256 The deficit still unpaid.
    """
    pausable._require_not_paused()
    return self._settle(owner, segment)


# ---------------------------------------------------------------- views

@external
@view
def flagged_at(owner: address, segment: uint256) -> uint256:
    """
    @notice When the account's current liquidatable episode started (0: none). A flag not
            seen for two auction durations belongs to a past episode and reads as 0.
    @param owner The account owner.
    @param segment The account's segment.
    @return uint256 Timestamp the auction clock started.
    """
    started: uint256 = 0
    seen: uint256 = 0
    started, seen = self._episode(owner, segment)
    return started


@external
@view
def adl_score(owner: address, market: uint256) -> uint256:
    """
    @notice The auto-deleveraging rank of owner's position in `market`: unrealized profit x
            account leverage (notional / equity), quote units; 0 if it is not profitable.
            Keepers deleverage the highest scores first (Hyperliquid / dYdX rule).
    @param owner The position's owner.
    @param market The market.
    @return uint256 The score.
    """
    segment: uint256 = (staticcall vault.market_config(market)) & constants.MASK_8
    size: int256 = 0
    entry: int256 = 0
    size, entry = staticcall vault.position(owner, market)
    mark: uint256 = staticcall oracle.price(market)
    profit: int256 = self._pnl(market, size, entry, mark)
    if size == 0 or profit <= 0:
        return 0
    health: IMarginVault.AccountHealth = staticcall vault.account_health(owner, segment)
    return convert(profit, uint256) * health.notional // convert(max(health.equity, 1), uint256)


@external
@view
def params() -> LiquidationParams:
    """
    @notice The current liquidation parameters.
    @return LiquidationParams The parameters.
    """
    return self._unpack_params()


@external
@view
def auction_discount(owner: address, segment: uint256) -> uint256:
    """
    @notice The Dutch-auction discount (constants.WAD) of the account's current episode now (before the
            keeper-economics caps); the start discount if it has none.
    @param owner The account owner.
    @param segment The account's segment.
    @return uint256 The discount, constants.WAD.
    """
    started: uint256 = 0
    seen: uint256 = 0
    started, seen = self._episode(owner, segment)
    elapsed: uint256 = 0
    if started != 0:
        elapsed = block.timestamp - started
    return self._auction_discount(self._params0, self._params1, elapsed)


@external
@view
def liquidation_quote(owner: address, market: uint256, size: uint256) -> (uint256, uint256, uint256, bool, uint256):
    """
    @notice What `liquidate(owner, market, size)` would do now. Reverts like `liquidate` for
            healthy accounts.
    @param owner The account owner.
    @param market The market.
    @param size Maximum base size.
    @return uint256 Size closed.
    @return uint256 Price.
    @return uint256 Liquidator's discount profit at mark (the keeper fee, if any, comes on top).
    @return bool Whether the whole position is closed.
    @return uint256 Keeper fee paid on top (the fee-floor top-up), quote units.
    """
    config: IMarginVault.MarketParams = packing._unpack_config(staticcall vault.market_config(market))
    started: uint256 = 0
    seen: uint256 = 0
    started, seen = self._episode(owner, config.segment)
    plan: Plan = self._plan(owner, market, size, config, started)
    return plan.amount, plan.price, self._reward(plan), plan.full_close, plan.keeper_fee


# ---------------------------------------------------------------- internal

@internal
def _liquidate(liquidator: address, owner: address, market: uint256, size: uint256) -> uint256:
    """
    @dev `liquidate` on behalf of `liquidator` (the caller, or a batch's caller).
    """
    pausable._require_not_paused()
    assert owner != liquidator, "engine: self-liquidation"
    config: IMarginVault.MarketParams = packing._unpack_config(staticcall vault.market_config(market))
    segment: uint256 = config.segment
    started: uint256 = 0
    seen: uint256 = 0
    started, seen = self._episode(owner, segment)
    plan: Plan = self._plan(owner, market, size, config, started)
    self._execute(liquidator, owner, market, plan, started, seen, True)
    return plan.amount


@internal
def _execute(
    liquidator: address, owner: address, market: uint256, plan: Plan, started: uint256, seen: uint256, check_im: bool
):
    """
    @dev Carry out `plan` for `liquidator`: keep the episode's clock, move the position (the
         vault checks the liquidator's IM after it if `check_im`), settle a flat bankrupt
         account, check the margin-ratio guard, and emit Liquidated.
    """
    segment: uint256 = plan.segment
    if started == 0:
        self._start_episode(owner, segment, liquidator)
    elif block.timestamp > seen + ((self._params1 >> 64) & constants.MASK_32):
        # keep a long episode current (written at most once per auction duration)
        self._flags[owner][segment] = started | (block.timestamp << 64)

    after: IMarginVault.AccountHealth = extcall vault.transfer_position(
        owner, liquidator, market, plan.amount, plan.price, plan.penalty, plan.keeper_fee, check_im, plan.mark
    )
    if after.mm == 0:
        self._clear_flag(owner, segment)
        if after.collateral < 0:
            self._settle(owner, segment)
    else:
        if plan.guard:
            # invariant 4: after.equity / after.mm >= before.equity / before.mm, but for the
            # keeper fee floor (never more than the floor, never below zero equity)
            assert (after.equity + convert(plan.keeper_fee, int256)) * convert(plan.before.mm, int256) >= (
                plan.before.equity * convert(after.mm, int256)
            ), "engine: margin ratio lowered"
        # an unwind keeps its clock, so the discount keeps growing until the inventory is gone
        if after.equity >= convert(after.mm, int256) and not plan.unwind:
            self._clear_flag(owner, segment)

    log Liquidated(
        owner=owner,
        liquidator=liquidator,
        market=market,
        size=plan.amount,
        price=plan.price,
        mark=plan.mark,
        discount=plan.discount,
        penalty=plan.penalty,
        keeper_fee=plan.keeper_fee,
        full_close=plan.full_close,
    )


@internal
@view
def _episode(owner: address, segment: uint256) -> (uint256, uint256):
    """
    @dev (started, last seen) of the account's current liquidatable episode, (0, 0) if none:
         a flag not seen for _EPISODE_GAP_DURATIONS auction durations is a past episode (the
         account recovered in between, or nobody acted), so a later dip starts a new auction.
    """
    word: uint256 = self._flags[owner][segment]
    started: uint256 = word & constants.MASK_64
    seen: uint256 = word >> 64
    if started == 0 or block.timestamp > seen + _EPISODE_GAP_DURATIONS * ((self._params1 >> 64) & constants.MASK_32):
        return 0, 0
    return started, seen


@internal
def _start_episode(owner: address, segment: uint256, by: address):
    self._flags[owner][segment] = block.timestamp | (block.timestamp << 64)
    log Flagged(owner=owner, segment=segment, flagged_by=by)


@internal
def _settle(owner: address, segment: uint256) -> uint256:
    unpaid: uint256 = extcall vault.cover_bad_debt(owner, segment)
    log BadDebtSettled(owner=owner, segment=segment, unpaid=unpaid)
    # only a deficit the pools cannot pay in any block gates withdrawals (not a per-block limit);
    # the pools are asked only when something is left unpaid
    if unpaid > 0:
        if unpaid > self._reach(segment):
            self._gate(segment)
    return unpaid


@internal
def _gate(segment: uint256):
    extcall vault.gate_withdrawals(segment, block.timestamp + WITHDRAWAL_GATE)


@internal
@view
def _reward(plan: Plan) -> uint256:
    # the liquidator's discount profit at mark
    if plan.price < plan.mark:
        return plan.amount * (plan.mark - plan.price) // NOTIONAL_SCALE
    return plan.amount * (plan.price - plan.mark) // NOTIONAL_SCALE


@internal
@pure
def _auction_discount(p0: uint256, p1: uint256, elapsed: uint256) -> uint256:
    start: uint256 = (p0 >> 128) & constants.MASK_64
    ceiling: uint256 = p0 >> 192
    duration: uint256 = (p1 >> 64) & constants.MASK_32
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
         Keeper economics, in this order:
         - bankrupt account (equity <= 0): no discount and no penalty (the pool would pay
           them); the keeper gets the fee floor;
         - the account stays open (the guard): discount <= equity x mm_ratio / MM (its
           equity/MM cannot fall) and the penalty only takes what the discount leaves;
         - the account is flat after: the discount is capped at its equity;
         - a call that closes a whole position, or one at the end of the auction, tops the
           keeper's reward up to the fee floor, out of the account's equity (never below 0);
         - the penalty takes only what is left of the equity.
    """
    assert size > 0, "engine: zero size"
    before: IMarginVault.AccountHealth = staticcall vault.account_health(owner, config.segment)
    assert before.mm > 0, "engine: account healthy"
    # the liquidator of last resort is open to liquidation above MM too (its inventory is offered back)
    unwind: bool = before.equity >= convert(before.mm, int256)
    if unwind:
        assert owner == self.liquidator.address, "engine: account healthy"
    position: int256 = 0
    entry: int256 = 0
    position, entry = staticcall vault.position(owner, market)
    assert position != 0, "engine: no position"

    p0: uint256 = self._params0
    p1: uint256 = self._params1
    mark: uint256 = staticcall oracle.price(market)
    held: uint256 = convert(abs(position), uint256)
    min_notional: uint256 = (p1 >> 96) & constants.MASK_80

    amount: uint256 = held
    if held * mark // NOTIONAL_SCALE >= min_notional:
        if before.equity * convert(constants.WAD, int256) < convert((p0 >> 64) & constants.MASK_64, int256) * convert(before.mm, int256):
            amount = min(size, held)
        else:
            amount = min(size, held * (p0 & constants.MASK_64) // constants.WAD)
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
    penalty_rate: uint256 = p1 & constants.MASK_64
    # what the account's equity can pay, less the rounding slack
    equity: uint256 = 0
    if before.equity > convert(_ROUNDING_SLACK, int256):
        equity = convert(before.equity, uint256) - _ROUNDING_SLACK
    if unwind:
        # the backstop's inventory pays no penalty to a segment pool
        penalty_rate = 0
    if before.equity <= 0:
        discount = 0
        penalty_rate = 0
    elif guard:
        # Closing notional n at discount d and penalty p costs n (d + p) of equity and frees
        # n x mm_ratio of MM: equity / MM does not fall iff d + p <= equity x mm_ratio / MM.
        # The keeper's discount comes first, the pool's penalty takes what is left.
        room: uint256 = convert(before.equity, uint256) * config.mm_ratio // before.mm
        room = room - RATIO_BUFFER if room > RATIO_BUFFER else 0
        discount = min(discount, room)
        penalty_rate = min(penalty_rate, room - discount)
    else:
        # flat after: the discount is paid out of the account's equity, never by the pool
        discount = min(discount, equity * constants.WAD // max(amount * mark // NOTIONAL_SCALE, 1))
    price: uint256 = self._liquidation_price(mark, discount, position > 0)

    reward: uint256 = amount * (mark - price if position > 0 else price - mark) // NOTIONAL_SCALE
    keeper_fee: uint256 = 0
    keeper_floor: uint256 = p1 >> 176
    # at the auction's end a partial call is topped up too, but only one that closes a full
    # close factor's share: 1-wei calls must not farm the floor out of the account's equity
    if reward < keeper_floor and (
        full_close or (elapsed >= (p1 >> 64) & constants.MASK_32 and amount * constants.WAD >= held * (p0 & constants.MASK_64))
    ):
        keeper_fee = keeper_floor - reward
        if before.equity > 0:
            # a solvent account pays the floor out of its own equity only (never bad debt)
            keeper_fee = min(keeper_fee, equity - min(equity, reward))
    penalty: uint256 = amount * mark // NOTIONAL_SCALE * penalty_rate // constants.WAD
    # the penalty comes only out of equity left after the discount and the keeper fee: it
    # never creates bad debt that the pool would pay to itself
    penalty = min(penalty, equity - min(equity, reward + keeper_fee))
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
        elapsed=elapsed,
        unwind=unwind,
    )


@internal
@pure
def _liquidation_price(mark: uint256, discount: uint256, is_long: bool) -> uint256:
    # rounded against the liquidated account
    if is_long:
        return mark * (constants.WAD - discount) // constants.WAD
    return (mark * (constants.WAD + discount) + constants.WAD - 1) // constants.WAD


@internal
@view
def _takeover_terms(
    taker: address, owner: address, market: uint256, amount: uint256, mark: uint256, config: IMarginVault.MarketParams
) -> (uint256, uint256, uint256):
    """
    @dev What taking `amount` of owner's position asks of the liquidator: its notional in the
         market after, the notional taken, and the margin to post so that it meets IM after
         (_TAKEOVER_MARGIN_MULTIPLE x (its IM + the IM added) - its equity, at least 0).
    """
    position: int256 = 0
    basis: int256 = 0
    position, basis = staticcall vault.position(owner, market)
    held: int256 = 0
    held, basis = staticcall vault.position(taker, market)
    moved: int256 = convert(amount, int256)
    if position < 0:
        moved = -moved
    notional: uint256 = amount * mark // NOTIONAL_SCALE
    market_notional: uint256 = convert(abs(held + moved), uint256) * mark // NOTIONAL_SCALE
    theirs: IMarginVault.AccountHealth = staticcall vault.account_health(taker, config.segment)
    needed: uint256 = _TAKEOVER_MARGIN_MULTIPLE * (theirs.im + notional * config.im_ratio // constants.WAD + 1)
    margin: uint256 = 0
    if convert(needed, int256) > theirs.equity:
        margin = convert(convert(needed, int256) - max(theirs.equity, 0), uint256)
    return market_notional, notional, margin


@internal
@view
def _takeover_refused(
    owner: address, market: uint256, position: int256, mark: uint256, config: IMarginVault.MarketParams
) -> bool:
    """
    @dev Whether the liquidator of last resort would refuse owner's whole position now (none
         set counts as a refusal): only then may ADL close a position whose loss the pools can pay.
    """
    taker: address = self.liquidator.address
    if taker == empty(address) or owner == taker:
        return True
    market_notional: uint256 = 0
    notional: uint256 = 0
    margin: uint256 = 0
    market_notional, notional, margin = self._takeover_terms(
        taker, owner, market, convert(abs(position), uint256), mark, config
    )
    return staticcall self.liquidator.refusal(market_notional, notional, margin) != 0


@internal
@view
def _uncovered_loss(health: IMarginVault.AccountHealth, segment: uint256) -> uint256:
    """
    @dev The part of the account's deficit that the segment pool (with the backstop behind
         it) cannot cover, now or in a later block.
    """
    if health.equity >= 0:
        return 0
    deficit: uint256 = convert(-health.equity, uint256)
    capacity: uint256 = self._reach(segment)
    if deficit <= capacity:
        return 0
    return deficit - capacity


@internal
@view
def _reach(segment: uint256) -> uint256:
    # what the pools can pay across blocks: a per-block cover limit used up by earlier covers
    # in this block must not open ADL (or gate withdrawals) while the pool still holds funds
    pool: address = staticcall vault.segment_pool(segment)
    if pool == empty(address):
        return 0
    return staticcall IInsurancePool(pool).cover_reach()


@internal
def _clear_flag(owner: address, segment: uint256):
    if self._flags[owner][segment] != 0:
        self._flags[owner][segment] = 0
        log Unflagged(owner=owner, segment=segment)


@internal
def _set_params(params: LiquidationParams):
    assert params.close_factor > 0 and params.close_factor <= constants.WAD, "engine: bad close factor"
    assert params.full_close_tier <= constants.WAD, "engine: bad full-close tier"
    assert params.auction_start_discount <= params.auction_max_discount, "engine: bad auction"
    assert params.auction_max_discount < constants.WAD // 2, "engine: bad auction"
    assert params.auction_duration > 0 and params.auction_duration <= constants.MASK_32, "engine: bad auction"
    assert params.liquidation_penalty < constants.WAD // 10, "engine: bad penalty"
    assert params.min_liquidation_notional <= constants.MASK_80 and params.keeper_fee_floor <= constants.MASK_80, "engine: bad notional"
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
        close_factor=p0 & constants.MASK_64,
        full_close_tier=(p0 >> 64) & constants.MASK_64,
        auction_start_discount=(p0 >> 128) & constants.MASK_64,
        auction_max_discount=p0 >> 192,
        liquidation_penalty=p1 & constants.MASK_64,
        auction_duration=(p1 >> 64) & constants.MASK_32,
        min_liquidation_notional=(p1 >> 96) & constants.MASK_80,
        keeper_fee_floor=p1 >> 176,
    )


@internal
@view
def _pnl(market: uint256, size: int256, basis: int256, mark: uint256) -> int256:
    """
    @dev A position's PnL at `mark`, funding included (MarginVault.position's basis is net of
         the funding index the position joined at).
    """
    net: int256 = convert(mark, int256) - staticcall vault.funding_index(market, mark)
    return packing._floor_div(size * net, convert(NOTIONAL_SCALE, int256)) - basis
