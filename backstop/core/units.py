"""Fixed-point helpers: sizes and prices are 18-decimal, quote amounts use the token's decimals."""

from decimal import Decimal

WAD = 10**18
BPS = 10_000
MAX_UINT256 = 2**256 - 1
# pool_shares.DECIMALS_OFFSET: share decimals = asset decimals + 6, and 10**6 virtual shares
SHARE_DECIMALS_OFFSET = 6
VIRTUAL_SHARES = 10**SHARE_DECIMALS_OFFSET


def wad(x: float | int | str | Decimal) -> int:
    """An 18-decimal fixed-point integer from a human number (exact for str/Decimal)."""
    return int(Decimal(str(x)) * WAD)


def quote(x: float | int | str | Decimal, decimals: int) -> int:
    """A quote-token amount in base units from a human number."""
    return int(Decimal(str(x)) * 10**decimals)


def from_quote(amount: int, decimals: int) -> Decimal:
    return Decimal(amount) / Decimal(10**decimals)


def from_wad(x: int) -> Decimal:
    return Decimal(x) / Decimal(WAD)


def notional(size: int, price: int, decimals: int) -> int:
    """Quote units of |size| at price, rounded down (the vault's trade cost rule)."""
    return abs(size) * price // 10 ** (36 - decimals)


def floor_div(n: int, d: int) -> int:
    """Floor division (d > 0), like the vault's `_floor_div` (Python's `//` already floors)."""
    assert d > 0
    return n // d


def ceil_div(n: int, d: int) -> int:
    """Signed ceiling division (d > 0), like the vault's `_ceil_div`."""
    assert d > 0
    return -((-n) // d)


def tdiv(a: int, b: int) -> int:
    """Vyper's signed `//`: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def mul_div(x: int, y: int, d: int, up: bool) -> int:
    """x * y / d rounded down, or up when `up` (d > 0)."""
    q, r = divmod(x * y, d)
    return q + 1 if up and r else q
