# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize gas
"""
@title BackstopPool
@notice The shared second loss layer behind member InsurancePools. LPs hold ERC-4626 shares
        (pool_shares). Members are pools registered by address (set_member, timelocked) —
        any InsurancePool, including the pools of another MarginVault deployment. Each member
        forwards part of its income here and, when it cannot pay a deficit itself, draws the
        rest through `draw` (or refills itself below its floor through `top_up`) — at most
        its own cap_bps of the backstop per draw_window and at most global_draw_cap_bps of it
        across all members per window, so neither one member nor several crashing together
        can drain the fund (Drift LUNA 2022).
@dev Caps are recomputed at every draw from the assets the window started with:
       member cap = cap_bps(member) * (managed assets now + drawn by the member in its window) / 10_000
       global cap = global_draw_cap_bps * (managed assets now + drawn by all in the global window) / 10_000
     (rounded down). Adding back what the window already drew makes the base the backstop at
     the window's start net of later deposits, redeems and income, so the first draw of a
     window pins nothing (a dust draw cannot freeze a small cap for a day) and the cap does not
     shrink as the window's own draws spend it. Managed assets (unvested income included) are
     the base because a draw is charged to unvested income first: totalAssets + drawn would
     count a draw paid from unvested income twice. A window lasts draw_window seconds from the
     draw that opened it; the next draw after that opens a new one (the member windows and the
     global window roll independently). draw and top_up share the same windows and caps; they
     are the only paths to a loss here. At most MAX_MEMBERS members (no loop runs over them).
     Storage: a window is start (low 64) | drawn (high 192) in one slot; the global draw
     parameters share one slot (global_draw_cap_bps 16 at bit 16 | draw_window 64 at bit 32).
     Liquidator of last resort (BackstopLiquidator, docs/pools.md): the registered liquidator
     borrows idle assets for the margin of the positions it takes over (fund_liquidator) and
     settles them back (settle_liquidator). What it holds stays in managed assets at its booked
     value (`deployed`); a loss is charged when the liquidator marks or closes its account
     (LiquidatorSettled), a gain is income when it comes home. Draws and top-ups pay from idle
     assets only (managed - deployed, floored at 0: _idle).
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
DEFAULT_DRAW_WINDOW: constant(uint256) = 86400
MAX_DRAW_WINDOW: constant(uint256) = 365 * 86400
MAX_MEMBERS: public(constant(uint256)) = 64
# all members together may draw at most half of the backstop per window by default
_DEFAULT_GLOBAL_DRAW_CAP_BPS: constant(uint256) = 5_000
_MASK_16: constant(uint256) = 2**16 - 1
_MASK_64: constant(uint256) = 2**64 - 1


# ---------------------------------------------------------------- storage

# member pool -> its draw cap in bps (0 = not a member)
member_cap_bps: public(HashMap[address, uint256])
member_count: public(uint256)
# (unused low 16) | global_draw_cap_bps (16) | draw_window (64)
_draw_params: uint256
# per member, and for all members together: window start (low 64) | drawn in it (high 192)
_windows: HashMap[address, uint256]
_global_window: uint256
# the liquidator of last resort and the margin it holds at book (part of managed assets)
liquidator: public(address)
deployed: public(uint256)


# ---------------------------------------------------------------- events

event Draw:
    member: indexed(address)
    requested: uint256
    paid: uint256
    recipient: indexed(address)

event TopUp:
    member: indexed(address)
    requested: uint256
    paid: uint256

event BackstopIncome:
    pool: indexed(address)
    amount: uint256

event MemberSet:
    pool: indexed(address)
    cap_bps: uint256

event LiquidatorSet:
    liquidator: indexed(address)

event LiquidatorFunded:
    liquidator: indexed(address)
    amount: uint256

event LiquidatorSettled:
    liquidator: indexed(address)
    released: uint256
    returned: uint256
    gain: uint256
    loss: uint256


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
    self._draw_params = (_DEFAULT_GLOBAL_DRAW_CAP_BPS << 16) | (DEFAULT_DRAW_WINDOW << 32)


# ---------------------------------------------------------------- income and draw

@external
def notify_income(amount: uint256):
    """
    @notice Receive income from a member pool: pulls `amount` from the caller and vests it.
    @dev INCOME_ROLE (each member pool). Fee-on-transfer tokens revert.
    @param amount Quote amount (the caller approved it).
    """
    access_control._check_role(INCOME_ROLE, msg.sender)
    assert amount > 0, "backstop: zero amount"
    pool_shares._pull(msg.sender, amount)
    pool_shares._add_income(amount)
    log BackstopIncome(pool=msg.sender, amount=amount)


@external
def draw(amount: uint256, recipient: address) -> uint256:
    """
    @notice Pay part of the calling member's deficit that it could not: min(amount, room left
            under the member's cap, room left under the global cap, assets) goes to `recipient`.
    @dev Members only. The loss is charged to backstop LPs (unvested income first); the Draw
         event reports requested and paid (0 included). A draw that pays nothing stores
         nothing, so it opens no window.
    @param amount The part of the deficit still unpaid.
    @param recipient Who receives the payment (the vault or the liquidation engine).
    @return uint256 The amount paid.
    """
    assert recipient != empty(address), "backstop: zero recipient"
    paid: uint256 = self._draw(amount, recipient)
    log Draw(member=msg.sender, requested=amount, paid=paid, recipient=recipient)
    return paid


@external
def top_up(amount: uint256) -> uint256:
    """
    @notice Refill the calling member below its floor: pays it min(amount, the same rooms as
            draw, assets). Counts against the member's and the global draw windows.
    @dev Members only (InsurancePool.rebalance calls it). Emits TopUp (0 paid included).
    @param amount What the member lacks to reach its floor.
    @return uint256 The amount paid to the caller.
    """
    paid: uint256 = self._draw(amount, msg.sender)
    log TopUp(member=msg.sender, requested=amount, paid=paid)
    return paid


# ---------------------------------------------------------------- liquidator of last resort

@external
def fund_liquidator(amount: uint256):
    """
    @notice Lend `amount` of idle assets to the liquidator for the margin of a takeover; it
            stays in managed assets at book (`deployed`) until settled.
    @dev Only the registered liquidator (which checks its caps first).
    @param amount Quote units, at most the idle assets.
    """
    assert msg.sender == self.liquidator and msg.sender != empty(address), "backstop: not liquidator"
    assert amount > 0, "backstop: zero amount"
    assert amount <= self._idle(pool_shares._assets & pool_shares.MASK_128), "backstop: not enough idle assets"
    self.deployed += amount
    pool_shares._pay(msg.sender, amount)
    log LiquidatorFunded(liquidator=msg.sender, amount=amount)


@external
def settle_liquidator(released: uint256, returned: uint256):
    """
    @notice Settle `released` of the liquidator's book against `returned` quote units it sends
            back: a gain (returned > released) vests as income, a loss is charged to the LPs
            now (unvested income first). A mark-to-market loss is settle(loss, 0).
    @dev Only the registered liquidator; it approved `returned` first.
    @param released Book value given up (at most `deployed`).
    @param returned Quote units paid back.
    """
    assert msg.sender == self.liquidator and msg.sender != empty(address), "backstop: not liquidator"
    assert released <= self.deployed, "backstop: release exceeds book"
    self.deployed -= released
    if returned > 0:
        pool_shares._pull(msg.sender, returned)
    gain: uint256 = 0
    loss: uint256 = 0
    if returned > released:
        gain = returned - released
        pool_shares._add_income(gain)
    elif released > returned:
        loss = released - returned
        pool_shares._take_loss(loss)
    log LiquidatorSettled(liquidator=msg.sender, released=released, returned=returned, gain=gain, loss=loss)


# ---------------------------------------------------------------- admin

@external
def set_member(pool: address, cap_bps: uint256):
    """
    @notice Register `pool` as a member that may draw up to `cap_bps` of the backstop per
            window, change its cap, or remove it (cap 0). The pool also needs INCOME_ROLE to
            forward income. An open window of the member keeps what it drew.
    @dev DEFAULT_ADMIN_ROLE (the timelock). At most MAX_MEMBERS members.
    @param pool The member pool (any InsurancePool of any vault on this asset).
    @param cap_bps Its cap per window in bps, at most 10,000 (0 = remove).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert pool != empty(address), "backstop: zero pool"
    assert cap_bps <= BPS, "backstop: bps > 10000"
    old: uint256 = self.member_cap_bps[pool]
    if old == 0 and cap_bps > 0:
        assert self.member_count < MAX_MEMBERS, "backstop: too many members"
        self.member_count += 1
    elif old > 0 and cap_bps == 0:
        self.member_count -= 1
    self.member_cap_bps[pool] = cap_bps
    log MemberSet(pool=pool, cap_bps=cap_bps)


@external
def set_liquidator(liquidator_: address):
    """
    @notice Register the BackstopLiquidator allowed to borrow margin (zero to remove). Only
            while nothing is deployed, so a book is never orphaned.
    @dev DEFAULT_ADMIN_ROLE (the timelock).
    @param liquidator_ The liquidator contract.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert self.deployed == 0, "backstop: liquidator holds assets"
    self.liquidator = liquidator_
    log LiquidatorSet(liquidator=liquidator_)


@external
def set_draw_window(window_: uint256):
    """
    @notice Length (seconds) of the member and global draw windows. Applies from the next
            draw: an open window ends draw_window after its start.
    @param window_ Window length, 1 second to 365 days.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    assert window_ > 0 and window_ <= MAX_DRAW_WINDOW, "backstop: bad window"
    self._draw_params = (self._draw_params & (_MASK_16 << 16)) | (window_ << 32)
    log pool_shares.ParamSet(param="draw_window", value=window_)


@external
def set_global_draw_cap(cap_bps: uint256):
    """
    @notice Cap on what all members together may draw per window (bps of the backstop's
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
def global_draw_cap_bps() -> uint256:
    """
    @notice Cap on all members' draws together per window, in bps.
    @return uint256 The cap in bps.
    """
    return (self._draw_params >> 16) & _MASK_16


@external
@view
def draw_window() -> uint256:
    """
    @notice Length of a draw window (member and global), in seconds.
    @return uint256 Seconds.
    """
    return self._draw_params >> 32


@external
@view
def draw_capacity(member: address) -> uint256:
    """
    @notice What `member` could still draw (or top up) now: min(room under its own cap, room
            under the global cap, assets); 0 for a non-member.
    @param member The member pool.
    @return uint256 Quote units.
    """
    params: uint256 = self._draw_params
    managed: uint256 = pool_shares._assets & pool_shares.MASK_128
    room: uint256 = self._room(self._window_now(self._windows[member], params >> 32), self.member_cap_bps[member], managed)
    global_room: uint256 = self._room(self._window_now(self._global_window, params >> 32), (params >> 16) & _MASK_16, managed)
    return min(min(room, global_room), self._idle(managed))


@external
@view
def draw_state(member: address) -> (uint256, uint256, uint256):
    """
    @notice The stored draw window of `member`: (start, cap now, drawn). A window older than
            draw_window is replaced at the next draw; until then it is reported as stored.
    @param member The member pool.
    @return (uint256, uint256, uint256) start, cap (bps of managed assets + drawn), drawn.
    """
    return self._state(self._windows[member], self.member_cap_bps[member])


@external
@view
def global_draw_state() -> (uint256, uint256, uint256):
    """
    @notice The stored global draw window (all members): (start, cap now, drawn). A window
            older than draw_window is replaced at the next draw; until then it is reported as
            stored.
    @return (uint256, uint256, uint256) start, cap (bps of managed assets + drawn), drawn.
    """
    params: uint256 = self._draw_params
    return self._state(self._global_window, (params >> 16) & _MASK_16)


# ---------------------------------------------------------------- internal

@internal
def _draw(amount: uint256, recipient: address) -> uint256:
    """
    @dev Pay `recipient` min(amount, member room, global room, assets) for the calling member
         and book it in both windows; stores nothing when it pays nothing.
    """
    cap_bps: uint256 = self.member_cap_bps[msg.sender]
    assert cap_bps > 0, "backstop: not a member"
    assert amount > 0, "backstop: zero amount"
    params: uint256 = self._draw_params
    managed: uint256 = pool_shares._assets & pool_shares.MASK_128
    window: uint256 = self._window_now(self._windows[msg.sender], params >> 32)
    global_window: uint256 = self._window_now(self._global_window, params >> 32)
    room: uint256 = self._room(window, cap_bps, managed)
    global_room: uint256 = self._room(global_window, (params >> 16) & _MASK_16, managed)
    paid: uint256 = min(min(amount, room), min(global_room, self._idle(managed)))
    if paid > 0:
        self._windows[msg.sender] = window + (paid << 64)
        self._global_window = global_window + (paid << 64)
        pool_shares._take_loss(paid)
        pool_shares._pay(recipient, paid)
    return paid


@internal
@view
def _idle(managed: uint256) -> uint256:
    """
    @dev Managed assets not lent to the liquidator, floored at 0: a redeem paid with tokens sent
         here directly can take managed assets below what is lent (a draw then pays nothing,
         it never reverts).
    """
    return managed - min(self.deployed, managed)


@internal
@view
def _window_now(window: uint256, length: uint256) -> uint256:
    """
    @dev The window a draw now falls in: the stored one, or a fresh one starting now (nothing
         drawn) if none is open.
    """
    start: uint256 = window & _MASK_64
    if start == 0 or block.timestamp >= start + length:
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
