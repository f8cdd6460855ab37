"""Helpers of the pool suite (imported by the tests; fixtures live in conftest.py)."""

from ape import chain

DECIMALS = 6
DAY = 86400
COOLDOWN = 7 * DAY
WINDOW = 2 * DAY
VESTING = DAY
MISSING_ROLE = "access_control: account is missing role"


def deposit(token, pool, account, amount):
    """Mint, approve and deposit `amount` for `account`; returns the receipt."""
    token.mint(account, amount, sender=account)
    token.approve(pool, amount, sender=account)
    return pool.deposit(amount, account, sender=account)


def income(token, pool, settler, amount):
    """The vault pays `amount` of income into `pool`; returns the receipt."""
    token.mint(settler, amount, sender=settler)
    token.approve(pool, amount, sender=settler)
    return pool.notify_income(amount, sender=settler)


def mine_at(timestamp):
    """Mine an empty block at exactly `timestamp` (views then see that time)."""
    chain.mine(1, timestamp=timestamp)


def next_tx_at(timestamp):
    """The next transaction is mined at exactly `timestamp`."""
    chain.pending_timestamp = timestamp


def now():
    return chain.blocks.head.timestamp


def events(receipt, contract, name):
    return list(receipt.decode_logs(getattr(contract, name)))


def draw_room(backstop, member) -> int:
    """What `member` may draw from `backstop` now: BackstopPool._room of its window and of the global window, min'd
    with idle assets (managed less what is lent, floored at 0), from the stored windows (valid while both are open
    or empty)."""
    managed = int(backstop.managed_assets())
    _, _, drawn = (int(x) for x in backstop.draw_state(member))
    _, _, all_drawn = (int(x) for x in backstop.global_draw_state())
    own = max((managed + drawn) * int(backstop.member_cap_bps(member)) // 10_000 - drawn, 0)
    every = max((managed + all_drawn) * int(backstop.global_draw_cap_bps()) // 10_000 - all_drawn, 0)
    return min(own, every, max(managed - int(backstop.deployed()), 0))
