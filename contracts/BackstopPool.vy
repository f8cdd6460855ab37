# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize gas
"""
@title BackstopPool
@notice The shared second loss layer behind the segment InsurancePools. LPs hold ERC-4626
        shares (pool_shares). Each segment pool forwards part of its income here and, when it
        cannot pay a deficit itself, draws the rest through `draw` — only for its own segment,
        at most draw_cap_bps of the backstop per segment per draw_window and at most
        global_draw_cap_bps of it across all segments per window, so neither one segment nor
        several crashing together can drain the fund (Drift LUNA 2022).
@dev Caps are recomputed at every draw from the assets the window started with:
       segment cap = draw_cap_bps * (managed assets now + drawn by the segment in its window) / 10_000
       global cap  = global_draw_cap_bps * (managed assets now + drawn by all in the global window) / 10_000
     (rounded down). Adding back what the window already drew makes the base the backstop at
     the window's start net of later deposits, redeems and income, so the first draw of a
     window pins nothing (a dust draw cannot freeze a small cap for a day) and the cap does not
     shrink as the window's own draws spend it. Managed assets (unvested income included) are
     the base because a draw is charged to unvested income first: totalAssets + drawn would
     count a draw paid from unvested income twice. A window lasts draw_window seconds from the
     draw that opened it; the next draw after that opens a new one (the segment windows and the
     global window roll independently). Draw is the only path to a loss here.
     Storage: a window is start (low 64) | drawn (high 192) in one slot; the three draw
     parameters share one slot (draw_cap_bps 16 | global_draw_cap_bps 16 | draw_window 64), so
     a draw reads three slots for its limits.
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
# all segments together may draw at most half of the backstop per window by default
_DEFAULT_GLOBAL_DRAW_CAP_BPS: constant(uint256) = 5_000
_MASK_16: constant(uint256) = 2**16 - 1
_MASK_64: constant(uint256) = 2**64 - 1


# ---------------------------------------------------------------- storage

segment_pool: public(HashMap[uint256, address])
# draw_cap_bps (low 16) | global_draw_cap_bps (16) | draw_window (64)
_draw_params: uint256
# per segment, and for all segments together: window start (low 64) | drawn in it (high 192)
_windows: HashMap[uint256, uint256]
_global_window: uint256


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
    self._draw_params = DEFAULT_DRAW_CAP_BPS | (_DEFAULT_GLOBAL_DRAW_CAP_BPS << 16) | (DEFAULT_DRAW_WINDOW << 32)


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
    @notice Pay part of `segment`'s deficit that its pool could not: min(amount, room left
            under the segment's cap, room left under the global cap, assets) goes to `recipient`.
    @dev Only the pool registered for `segment`. The loss is charged to backstop LPs
         (unvested income first); the Draw event reports requested and paid (0 included).
         A draw that pays nothing stores nothing, so it opens no window.
    @param segment The segment whose pool is calling.
    @param amount The part of the deficit still unpaid.
    @param recipient Who receives the payment (the vault or the liquidation engine).
    @return uint256 The amount paid.
    """
    assert msg.sender == self.segment_pool[segment] and msg.sender != empty(address), "backstop: not segment pool"
    assert amount > 0, "backstop: zero amount"
    assert recipient != empty(address), "backstop: zero recipient"
    params: uint256 = self._draw_params
    managed: uint256 = pool_shares._assets & pool_shares.MASK_128
    window: uint256 = self._window_now(self._windows[segment], params)
    global_window: uint256 = self._window_now(self._global_window, params)
    room: uint256 = self._room(window, params & _MASK_16, managed)
    global_room: uint256 = self._room(global_window, (params >> 16) & _MASK_16, managed)
    paid: uint256 = min(min(amount, room), min(global_room, managed))
    if paid > 0:
        self._windows[segment] = window + (paid << 64)
        self._global_window = global_window + (paid << 64)
        pool_shares._take_loss(paid)
        pool_shares._pay(recipient, paid)
    log Draw(segment=segment, requested=amount, paid=paid, recipient=recipient)
    return paid


# ---------------------------------------------------------------- admin

@external
def set_segment_pool(segment: uint256, pool: address):
    """
    @notice Register the InsurancePool allowed to draw for `segment` (zero to unregister).
    @param segment The segment.
    @param pool The pool allowed to draw for it.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self.segment_pool[segment] = pool
    log SegmentPoolSet(segment=segment, pool=pool)


@external
def set_draw_cap(cap_bps: uint256, window_: uint256):
    """
    @notice Per-segment draw cap (bps of the backstop's assets at the window's start) and the
            window length (seconds) of the segment and global windows. Both apply from the next
            draw: caps are recomputed at every draw, and an open window ends draw_window after
            its start.
    @param cap_bps Per-segment cap, at most 10,000.
    @param window_ Window length, 1 second to 365 days.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    assert cap_bps <= BPS, "backstop: bps > 10000"
    assert window_ > 0 and window_ <= MAX_DRAW_WINDOW, "backstop: bad window"
    params: uint256 = self._draw_params
    self._draw_params = cap_bps | (params & (_MASK_16 << 16)) | (window_ << 32)
    log pool_shares.ParamSet(param="draw_cap_bps", value=cap_bps)
    log pool_shares.ParamSet(param="draw_window", value=window_)


@external
def set_global_draw_cap(cap_bps: uint256):
    """
    @notice Cap on what all segments together may draw per window (bps of the backstop's
            assets at the global window's start). Applies from the next draw.
    @param cap_bps Global cap, at most 10,000 (0 stops every draw).
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    assert cap_bps <= BPS, "backstop: bps > 10000"
    params: uint256 = self._draw_params
    self._draw_params = (params & ~(_MASK_16 << 16)) | (cap_bps << 16)
    log pool_shares.ParamSet(param="global_draw_cap_bps", value=cap_bps)


@external
def set_deposit_cap(cap: uint256):
    """
    @notice Cap on totalAssets for new deposits (max_value(uint256) = no cap).
    @param cap The cap, in quote units.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    pool_shares._set_deposit_cap(cap)


@external
def set_redeem_delays(cooldown_: uint256, window_: uint256):
    """
    @notice Cooldown before a redeem request unlocks and the window it stays open.
    @param cooldown_ Seconds from a request to its unlock.
    @param window_ Seconds the request stays redeemable after the unlock.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    pool_shares._set_redeem_delays(cooldown_, window_)


@external
def set_income_vesting(period: uint256):
    """
    @notice Period over which new income vests.
    @param period Seconds (0 = at once).
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
def draw_cap_bps() -> uint256:
    """
    @notice Per-segment draw cap, in bps of the backstop's assets at the window's start.
    @return uint256 The cap in bps.
    """
    return self._draw_params & _MASK_16


@external
@view
def global_draw_cap_bps() -> uint256:
    """
    @notice Cap on all segments' draws together per window, in bps.
    @return uint256 The cap in bps.
    """
    return (self._draw_params >> 16) & _MASK_16


@external
@view
def draw_window() -> uint256:
    """
    @notice Length of a draw window (segment and global), in seconds.
    @return uint256 Seconds.
    """
    return self._draw_params >> 32


@external
@view
def draw_capacity(segment: uint256) -> uint256:
    """
    @notice What `segment` could still draw now: min(room under its own cap, room under the
            global cap, assets).
    @param segment The segment.
    @return uint256 Quote units.
    """
    params: uint256 = self._draw_params
    managed: uint256 = pool_shares._assets & pool_shares.MASK_128
    room: uint256 = self._room(self._window_now(self._windows[segment], params), params & _MASK_16, managed)
    global_room: uint256 = self._room(self._window_now(self._global_window, params), (params >> 16) & _MASK_16, managed)
    return min(min(room, global_room), managed)


@external
@view
def draw_state(segment: uint256) -> (uint256, uint256, uint256):
    """
    @notice The stored draw window of `segment`: (start, cap now, drawn). A window older than
            draw_window is replaced at the next draw; until then it is reported as stored.
    @param segment The segment.
    @return (uint256, uint256, uint256) start, cap (bps of managed assets + drawn), drawn.
    """
    params: uint256 = self._draw_params
    return self._state(self._windows[segment], params & _MASK_16)


@external
@view
def global_draw_state() -> (uint256, uint256, uint256):
    """
    @notice The stored global draw window (all segments): (start, cap now, drawn). A window
            older than draw_window is replaced at the next draw; until then it is reported as
            stored.
    @return (uint256, uint256, uint256) start, cap (bps of managed assets + drawn), drawn.
    """
    params: uint256 = self._draw_params
    return self._state(self._global_window, (params >> 16) & _MASK_16)


# ---------------------------------------------------------------- internal

@internal
@view
def _window_now(window: uint256, params: uint256) -> uint256:
    """
    @dev The window a draw now falls in: the stored one, or a fresh one starting now (nothing
         drawn) if none is open.
    """
    start: uint256 = window & _MASK_64
    if start == 0 or block.timestamp >= start + (params >> 32):
        return block.timestamp
    return window


@internal
@pure
def _room(window: uint256, cap_bps: uint256, managed: uint256) -> uint256:
    """
    @dev cap_bps of (managed + drawn) minus drawn, floored at 0 (rounded down).
    """
    drawn: uint256 = window >> 64
    cap: uint256 = (managed + drawn) * cap_bps // BPS
    if cap <= drawn:
        return 0
    return cap - drawn


@internal
@view
def _state(window: uint256, cap_bps: uint256) -> (uint256, uint256, uint256):
    drawn: uint256 = window >> 64
    return window & _MASK_64, ((pool_shares._assets & pool_shares.MASK_128) + drawn) * cap_bps // BPS, drawn
