# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize gas
"""
@title BackstopLiquidator
@notice The BackstopPool's liquidator of last resort. When a Dutch auction ends with nobody
        taking a position, a LiquidationEngine with TAKEOVER_ROLE asks this contract to take
        it at the auction's end price into its own margin account in the engine's vault,
        instead of deleveraging winners (Hyperliquid's HLP liquidator). The margin is borrowed
        from the BackstopPool, so its P&L lands in the backstop's share price: a loss when
        `mark` or `reclaim` sees equity below the book, a gain as income when `reclaim` brings
        a flat account home.
        Caps (as bps of the backstop's managed assets), after the JELLY incident of March 2025
        and Binance's insurance-fund rules: one market's notional, the notional of all its
        accounts, and the takeover losses per rolling window past which it refuses, so ADL
        resumes. The inventory is not hidden: the engine lets anyone liquidate these accounts
        at the auction's discount schedule at any time, so keepers unwind them.
@dev Accounts are (vault, segment) pairs, at most MAX_ACCOUNTS (the aggregate notional is
     a bounded loop over them, on the takeover path only). Storage: the caps share one slot
     (market 16 | total 16 | loss limit 16 | loss window 64 at bit 48); the loss window is
     start (low 64) | lost (high 192), and its base adds back what the window lost, like the
     backstop's draw caps, so the limit does not shrink as its own losses spend it.
"""

from ethereum.ercs import IERC20

from interfaces import IBackstopLiquidator
from interfaces import IMarginVault

implements: IBackstopLiquidator

from snekmate.auth import access_control

initializes: access_control

exports: access_control.__interface__


# What this contract needs from the BackstopPool that lends it its margin.
interface IBackstopFunding:
    def fund_liquidator(amount: uint256): nonpayable
    def settle_liquidator(released: uint256, returned: uint256): nonpayable
    def managed_assets() -> uint256: view
    def deployed() -> uint256: view
    def asset() -> address: view


# The margin account calls on a MarginVault (deposit/withdraw are not in IMarginVault).
interface IAccountVault:
    def deposit(segment: uint256, amount: uint256): nonpayable
    def withdraw(segment: uint256, amount: uint256): nonpayable
    def account_health(owner: address, segment: uint256) -> IMarginVault.AccountHealth: view
    def quote() -> address: view


interface IVaultEngine:
    def vault() -> address: view


# ---------------------------------------------------------------- constants

RISK_ADMIN_ROLE: public(constant(bytes32)) = keccak256("RISK_ADMIN_ROLE")
TAKEOVER_ROLE: public(constant(bytes32)) = keccak256("TAKEOVER_ROLE")

BPS: constant(uint256) = 10_000
MAX_ACCOUNTS: public(constant(uint256)) = 8
MAX_LOSS_WINDOW: constant(uint256) = 365 * 86400
# refusal reasons (refusal())
REFUSED_LOSS_LIMIT: public(constant(uint256)) = 1
REFUSED_MARKET_CAP: public(constant(uint256)) = 2
REFUSED_TOTAL_CAP: public(constant(uint256)) = 3
REFUSED_IDLE_ASSETS: public(constant(uint256)) = 4
# defaults: Binance's old insurance-fund rules (20% of notional, exit after 7.5% in 8 h)
_DEFAULT_MARKET_CAP_BPS: constant(uint256) = 1_000
_DEFAULT_TOTAL_CAP_BPS: constant(uint256) = 2_000
_DEFAULT_LOSS_LIMIT_BPS: constant(uint256) = 750
_DEFAULT_LOSS_WINDOW: constant(uint256) = 8 * 3600
_MASK_16: constant(uint256) = 2**16 - 1
_MASK_64: constant(uint256) = 2**64 - 1


# ---------------------------------------------------------------- storage

struct Account:
    vault: address
    segment: uint256


backstop: public(immutable(IBackstopFunding))
_ASSET: immutable(IERC20)

# market_cap_bps (16) | total_cap_bps (16) | loss_limit_bps (16) | loss window seconds (64, bit 48)
_caps: uint256
# losses charged in the rolling window: start (low 64) | lost (high 192)
_loss_window: uint256
# margin booked per account (vault -> segment -> quote units), lent by the backstop
book: public(HashMap[address, HashMap[uint256, uint256]])
_accounts: DynArray[Account, MAX_ACCOUNTS]


# ---------------------------------------------------------------- events

event TakeoverFunded:
    vault: indexed(address)
    segment: indexed(uint256)
    margin: uint256
    notional: uint256
    market_notional: uint256

event Marked:
    vault: indexed(address)
    segment: indexed(uint256)
    book: uint256
    equity: int256
    loss: uint256

event Reclaimed:
    vault: indexed(address)
    segment: indexed(uint256)
    book: uint256
    received: uint256

event CapsSet:
    market_cap_bps: uint256
    total_cap_bps: uint256
    loss_limit_bps: uint256
    loss_window: uint256


# ---------------------------------------------------------------- constructor

@deploy
def __init__(backstop_: IBackstopFunding):
    """
    @param backstop_ The BackstopPool that lends the margin (it must register this contract).
    """
    access_control.__init__()
    backstop = backstop_
    _ASSET = IERC20(staticcall backstop_.asset())
    access_control._grant_role(RISK_ADMIN_ROLE, msg.sender)
    self._caps = (
        _DEFAULT_MARKET_CAP_BPS | (_DEFAULT_TOTAL_CAP_BPS << 16) | (_DEFAULT_LOSS_LIMIT_BPS << 32)
        | (_DEFAULT_LOSS_WINDOW << 48)
    )


# ---------------------------------------------------------------- takeover

@external
def fund_takeover(segment: uint256, market_notional: uint256, notional: uint256, margin: uint256) -> bool:
    """
    @notice Back a takeover by the calling engine: if the caps allow it, borrow `margin` from
            the backstop and deposit it into this contract's account in `segment` of the
            engine's vault. Refuses (returns False; `refusal` says why) past the rolling
            loss limit, when the market's notional after the takeover would exceed
            market_cap_bps of the backstop, when all accounts' notional plus `notional` would
            exceed total_cap_bps of it, or when the backstop's idle assets cannot lend `margin`.
    @dev TAKEOVER_ROLE (a LiquidationEngine, granted through the timelock).
    @param segment The segment of the taken position.
    @param market_notional This account's notional in the market after the takeover.
    @param notional The notional taken over (quote units).
    @param margin Margin to add (0 if the account already has enough).
    @return bool Whether the takeover may go ahead.
    """
    access_control._check_role(TAKEOVER_ROLE, msg.sender)
    vault_: address = staticcall IVaultEngine(msg.sender).vault()
    # a refusal is read from `refusal` (REFUSED_* codes): the engine reverts on it, which would
    # discard any event logged here
    if self._refusal(market_notional, notional, margin) != 0:
        return False
    if not self._listed(vault_, segment):
        assert len(self._accounts) < MAX_ACCOUNTS, "liquidator: too many accounts"
        assert staticcall IAccountVault(vault_).quote() == _ASSET.address, "liquidator: vault asset mismatch"
        self._accounts.append(Account(vault=vault_, segment=segment))
    if margin > 0:
        self.book[vault_][segment] += margin
        extcall backstop.fund_liquidator(margin)
        assert extcall _ASSET.approve(vault_, margin, default_return_value=True), "liquidator: approve failed"
        extcall IAccountVault(vault_).deposit(segment, margin)
    log TakeoverFunded(vault=vault_, segment=segment, margin=margin, notional=notional, market_notional=market_notional)
    return True


@external
def mark(vault_: address, segment: uint256) -> uint256:
    """
    @notice Charge the fall of an account's equity below its book to the backstop's LPs now
            (permissionless: keepers call it after a move). Gains wait for `reclaim`. The loss
            counts in the rolling loss window.
    @param vault_ The vault of the account.
    @param segment The account's segment.
    @return uint256 The loss charged (0 when equity is at or above the book).
    """
    book_: uint256 = self.book[vault_][segment]
    assert book_ > 0, "liquidator: nothing booked"
    equity: int256 = (staticcall IAccountVault(vault_).account_health(self, segment)).equity
    loss: uint256 = 0
    if equity < convert(book_, int256):
        loss = book_ - convert(max(equity, 0), uint256)
        self.book[vault_][segment] = book_ - loss
        self._count_loss(loss)
        extcall backstop.settle_liquidator(loss, 0)
    log Marked(vault=vault_, segment=segment, book=book_, equity=equity, loss=loss)
    return loss


@external
def reclaim(vault_: address, segment: uint256) -> uint256:
    """
    @notice Bring a flat account home (permissionless): withdraw all its collateral and settle
            it with the backstop against the book, a gain as vesting income, a loss charged to
            the LPs (and counted in the loss window).
    @param vault_ The vault of the account.
    @param segment The account's segment.
    @return uint256 Quote units returned to the backstop.
    """
    assert self._listed(vault_, segment), "liquidator: no such account"
    health: IMarginVault.AccountHealth = staticcall IAccountVault(vault_).account_health(self, segment)
    assert health.mm == 0, "liquidator: inventory left"
    book_: uint256 = self.book[vault_][segment]
    received: uint256 = convert(max(health.collateral, 0), uint256)
    self.book[vault_][segment] = 0
    self._unlist(vault_, segment)
    if received < book_:
        self._count_loss(book_ - received)
    if received > 0:
        before: uint256 = staticcall _ASSET.balanceOf(self)
        extcall IAccountVault(vault_).withdraw(segment, received)
        assert staticcall _ASSET.balanceOf(self) - before == received, "liquidator: withdrawal not received"
        assert extcall _ASSET.approve(backstop.address, received, default_return_value=True), "liquidator: approve failed"
    if book_ > 0 or received > 0:
        extcall backstop.settle_liquidator(book_, received)
    log Reclaimed(vault=vault_, segment=segment, book=book_, received=received)
    return received


# ---------------------------------------------------------------- admin

@external
def set_caps(market_cap_bps: uint256, total_cap_bps: uint256, loss_limit_bps: uint256, loss_window: uint256):
    """
    @notice Takeover caps, in bps of the backstop's managed assets: one market's notional, all
            accounts' notional, and the losses per rolling `loss_window` past which takeovers
            are refused. Apply from the next takeover.
    @param market_cap_bps Per-market notional cap (0 stops takeovers), at most total_cap_bps.
    @param total_cap_bps Aggregate notional cap, at most 10,000.
    @param loss_limit_bps Loss limit per window, at most 10,000.
    @param loss_window Window length, 1 second to 365 days.
    """
    access_control._check_role(RISK_ADMIN_ROLE, msg.sender)
    assert market_cap_bps <= total_cap_bps and total_cap_bps <= BPS, "liquidator: bad notional caps"
    assert loss_limit_bps <= BPS, "liquidator: bad loss limit"
    assert loss_window > 0 and loss_window <= MAX_LOSS_WINDOW, "liquidator: bad window"
    self._caps = market_cap_bps | (total_cap_bps << 16) | (loss_limit_bps << 32) | (loss_window << 48)
    log CapsSet(
        market_cap_bps=market_cap_bps, total_cap_bps=total_cap_bps, loss_limit_bps=loss_limit_bps, loss_window=loss_window
    )


# ---------------------------------------------------------------- views

@external
@view
def caps() -> (uint256, uint256, uint256, uint256):
    """
    @notice The takeover caps.
    @return (uint256, uint256, uint256, uint256) market_cap_bps, total_cap_bps, loss_limit_bps, loss_window.
    """
    caps_: uint256 = self._caps
    return caps_ & _MASK_16, (caps_ >> 16) & _MASK_16, (caps_ >> 32) & _MASK_16, caps_ >> 48


@external
@view
def inventory() -> (uint256, uint256, uint256):
    """
    @notice The inventory against its caps now: notional of all accounts at the vaults' marks,
            losses charged in the current loss window, and the backstop's managed assets (the
            caps' base).
    @return (uint256, uint256, uint256) Notional, lost in the window, managed assets.
    """
    window: uint256 = self._window_now(self._loss_window, self._caps >> 48)
    return self._inventory_notional(), window >> 64, staticcall backstop.managed_assets()


@external
@view
def refusal(market_notional: uint256, notional: uint256, margin: uint256) -> uint256:
    """
    @notice Why fund_takeover would refuse now, 0 if it would fund (REFUSED_* codes).
    @param market_notional The account's notional in the market after the takeover.
    @param notional The notional taken over.
    @param margin The margin it would borrow.
    @return uint256 The reason code.
    """
    return self._refusal(market_notional, notional, margin)


@external
@view
def accounts() -> DynArray[Account, MAX_ACCOUNTS]:
    """
    @notice The (vault, segment) margin accounts this liquidator holds.
    @return DynArray[Account, MAX_ACCOUNTS] The accounts.
    """
    return self._accounts


# ---------------------------------------------------------------- internal

@internal
@view
def _refusal(market_notional: uint256, notional: uint256, margin: uint256) -> uint256:
    caps_: uint256 = self._caps
    managed: uint256 = staticcall backstop.managed_assets()
    lost: uint256 = self._window_now(self._loss_window, caps_ >> 48) >> 64
    if lost > 0 and lost * BPS >= ((caps_ >> 32) & _MASK_16) * (managed + lost):
        return REFUSED_LOSS_LIMIT
    if market_notional * BPS > (caps_ & _MASK_16) * managed:
        return REFUSED_MARKET_CAP
    if (self._inventory_notional() + notional) * BPS > ((caps_ >> 16) & _MASK_16) * managed:
        return REFUSED_TOTAL_CAP
    # idle assets, floored at 0 (the backstop's managed assets can fall below what it lent)
    if margin > managed - min(staticcall backstop.deployed(), managed):
        return REFUSED_IDLE_ASSETS
    return 0


@internal
@view
def _inventory_notional() -> uint256:
    total: uint256 = 0
    for account: Account in self._accounts:
        total += (staticcall IAccountVault(account.vault).account_health(self, account.segment)).notional
    return total


@internal
def _count_loss(loss: uint256):
    self._loss_window = self._window_now(self._loss_window, self._caps >> 48) + (loss << 64)


@internal
@view
def _window_now(window: uint256, length: uint256) -> uint256:
    """
    @dev The stored window, or a fresh one starting now if none is open `length` after its start.
    """
    start: uint256 = window & _MASK_64
    if start == 0 or block.timestamp >= start + length:
        return block.timestamp
    return window


@internal
@view
def _listed(vault_: address, segment: uint256) -> bool:
    for account: Account in self._accounts:
        if account.vault == vault_ and account.segment == segment:
            return True
    return False


@internal
def _unlist(vault_: address, segment: uint256):
    last: uint256 = len(self._accounts) - 1
    for i: uint256 in range(MAX_ACCOUNTS):
        if i > last:
            break
        if self._accounts[i].vault == vault_ and self._accounts[i].segment == segment:
            self._accounts[i] = self._accounts[last]
            self._accounts.pop()
            return
