# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize gas
"""
@title BackstopPool
@notice The shared second loss layer behind the segment InsurancePools. LPs hold ERC-4626
        shares (pool_shares). Each segment pool forwards part of its income here and, when it
        cannot pay a deficit itself, draws the rest through `draw` — only for its own segment
        and at most draw_cap_bps of the backstop's assets per segment per draw_window, so one
        segment can never drain the fund (Drift LUNA 2022).
@dev The per-segment cap is fixed at the first draw of a window: cap = totalAssets at that
     moment * draw_cap_bps / 10_000 (rounded down); the window lasts draw_window seconds from
     that draw, then the next draw opens a new window. Draw is the only path to a loss here.
"""

from ethereum.ercs import IERC20

from interfaces import IBackstopPool

implements: IBackstopPool

from snekmate.auth import access_control

import pool_shares

initializes: access_control
initializes: pool_shares

exports: (
    access_control.__interface__,
    pool_shares.__interface__,
)


# ---------------------------------------------------------------- constants

RISK_ADMIN_ROLE: public(constant(bytes32)) = keccak256("RISK_ADMIN_ROLE")
GUARDIAN_ROLE: public(constant(bytes32)) = keccak256("GUARDIAN_ROLE")
INCOME_ROLE: public(constant(bytes32)) = keccak256("INCOME_ROLE")

BPS: constant(uint256) = 10_000
DEFAULT_DRAW_CAP_BPS: constant(uint256) = 2_500
DEFAULT_DRAW_WINDOW: constant(uint256) = 86400
MAX_DRAW_WINDOW: constant(uint256) = 365 * 86400


# ---------------------------------------------------------------- types

struct DrawWindow:
    start: uint256
    cap: uint256
    drawn: uint256


# ---------------------------------------------------------------- storage

segment_pool: public(HashMap[uint256, address])
draw_cap_bps: public(uint256)
draw_window: public(uint256)
_windows: HashMap[uint256, DrawWindow]


# ---------------------------------------------------------------- events

event Draw:
    segment: indexed(uint256)
    requested: uint256
    paid: uint256
    recipient: indexed(address)

event BackstopIncome:
    pool: indexed(address)
    amount: uint256

event SegmentPoolSet:
    segment: indexed(uint256)
    pool: indexed(address)


# ---------------------------------------------------------------- constructor

@deploy
def __init__(asset_: IERC20, name_: String[25], symbol_: String[5], deposit_cap_: uint256):
    """
    @param asset_ The quote token.
    @param name_ Share token name.
    @param symbol_ Share token symbol.
    @param deposit_cap_ Cap on totalAssets for deposits (max_value = none).
    """
    access_control.__init__()
    pool_shares.__init__(asset_, name_, symbol_, "Backstop Pool")
    access_control._grant_role(RISK_ADMIN_ROLE, msg.sender)
    access_control._grant_role(GUARDIAN_ROLE, msg.sender)
    pool_shares._set_deposit_cap(deposit_cap_)
    self.draw_cap_bps = DEFAULT_DRAW_CAP_BPS
    self.draw_window = DEFAULT_DRAW_WINDOW


# ---------------------------------------------------------------- income and draw

@external
def notify_income(amount: uint256):
    """
    @notice Receive income from a segment pool: pulls `amount` from the caller and vests it.
    @dev INCOME_ROLE (each segment pool). Fee-on-transfer tokens revert.
    @param amount Quote amount (the caller approved it).
    """
    access_control._check_role(INCOME_ROLE, msg.sender)
    assert amount > 0, "backstop: zero amount"
    pool_shares._pull(msg.sender, amount)
    pool_shares._add_income(amount)
    log BackstopIncome(pool=msg.sender, amount=amount)


@external
def draw(segment: uint256, amount: uint256, recipient: address) -> uint256:
    """
    @notice Pay part of `segment`'s deficit that its pool could not: min(amount, assets,
            remaining cap of the segment's window) goes to `recipient`.
    @dev Only the pool registered for `segment`. The loss is charged to backstop LPs
         (unvested income first); the Draw event reports requested and paid.
    @param segment The segment whose pool is calling.
    @param amount The part of the deficit still unpaid.
    @param recipient Who receives the payment (the vault or the liquidation engine).
    @return uint256 The amount paid.
    """
    assert msg.sender == self.segment_pool[segment] and msg.sender != empty(address), "backstop: not segment pool"
    assert amount > 0, "backstop: zero amount"
    assert recipient != empty(address), "backstop: zero recipient"
    window: DrawWindow = self._current_window(segment)
    room: uint256 = 0
    if window.cap > window.drawn:
        room = window.cap - window.drawn
    paid: uint256 = min(min(amount, room), pool_shares._assets & pool_shares.MASK_128)
    if paid > 0:
        window.drawn += paid
        self._windows[segment] = window
        pool_shares._take_loss(paid)
        pool_shares._pay(recipient, paid)
    log Draw(segment=segment, requested=amount, paid=paid, recipient=recipient)
    return paid


# ---------------------------------------------------------------- admin

@external
def set_segment_pool(segment: uint256, pool: address):
    """
    @notice Register the InsurancePool allowed to draw for `segment` (zero to unregister).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self.segment_pool[segment] = pool
    log SegmentPoolSet(segment=segment, pool=pool)


@external
def set_draw_cap(cap_bps: uint256, window_: uint256):
    """
    @notice Per-segment draw cap (bps of backstop assets) and its window length (seconds).
            Applies from the next window.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    assert cap_bps <= BPS, "backstop: bps > 10000"
    assert window_ > 0 and window_ <= MAX_DRAW_WINDOW, "backstop: bad window"
    self.draw_cap_bps = cap_bps
    self.draw_window = window_
    log pool_shares.ParamSet(param="draw_cap_bps", value=cap_bps)
    log pool_shares.ParamSet(param="draw_window", value=window_)


@external
def set_deposit_cap(cap: uint256):
    """
    @notice Cap on totalAssets for new deposits (max_value(uint256) = no cap).
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    pool_shares._set_deposit_cap(cap)


@external
def set_redeem_delays(cooldown_: uint256, window_: uint256):
    """
    @notice Cooldown before a redeem request unlocks and the window it stays open.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    pool_shares._set_redeem_delays(cooldown_, window_)


@external
def set_income_vesting(period: uint256):
    """
    @notice Period over which new income vests.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    pool_shares._set_income_vesting(period)


@external
def pause():
    """
    @notice Stop deposits and mints (guardian). Redeems, income and draws keep working.
    """
    access_control._check_role(GUARDIAN_ROLE, msg.sender)
    pool_shares._set_paused(True)


@external
def unpause():
    """
    @notice Resume deposits and mints (admin only).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    pool_shares._set_paused(False)


# ---------------------------------------------------------------- views

@external
@view
def draw_capacity(segment: uint256) -> uint256:
    """
    @notice What `segment` could still draw now (cap left in its window, bounded by assets).
    """
    window: DrawWindow = self._current_window(segment)
    if window.cap <= window.drawn:
        return 0
    return min(window.cap - window.drawn, pool_shares._assets & pool_shares.MASK_128)


@external
@view
def draw_state(segment: uint256) -> (uint256, uint256, uint256):
    """
    @notice The stored draw window of `segment`: (start, cap, drawn). A window older than
            draw_window is replaced at the next draw.
    """
    window: DrawWindow = self._windows[segment]
    return window.start, window.cap, window.drawn


# ---------------------------------------------------------------- internal

@internal
@view
def _current_window(segment: uint256) -> DrawWindow:
    window: DrawWindow = self._windows[segment]
    if window.start == 0 or block.timestamp >= window.start + self.draw_window:
        window = DrawWindow(
            start=block.timestamp,
            cap=pool_shares._total_assets() * self.draw_cap_bps // BPS,
            drawn=0,
        )
    return window
