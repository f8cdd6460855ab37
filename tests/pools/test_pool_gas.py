"""Gas of the pool hot paths, from receipts (gas_used includes the 21,000 base and calldata).

Targets: a second deposit of an existing LP <= 80,000; cover paid by the pool alone <= 60,000
(the settler already holds some quote token, like the real vault)."""

from pool_helpers import COOLDOWN, deposit, income, next_tx_at

GAS = {}


def test_gas_hot_paths(pool, token, settler, lp, usd):
    deposit(token, pool, lp, usd(1000))
    income(token, pool, settler, usd(100))
    token.mint(lp, usd(2000), sender=lp)
    token.approve(pool, usd(1000), sender=lp)
    GAS["deposit (2nd, exact approval)"] = pool.deposit(usd(1000), lp, sender=lp).gas_used
    token.approve(pool, 2**256 - 1, sender=lp)
    GAS["deposit (2nd, infinite approval)"] = pool.deposit(usd(1000), lp, sender=lp).gas_used
    shares = pool.balanceOf(lp)
    receipt = pool.request_redeem(shares // 2, sender=lp)
    GAS["request_redeem"] = receipt.gas_used
    GAS["cover (pool alone, unvested income)"] = pool.cover(usd(10), sender=settler).gas_used
    next_tx_at(receipt.timestamp + COOLDOWN)
    GAS["cover (pool alone, all vested)"] = pool.cover(usd(10), sender=settler).gas_used
    GAS["redeem (part of request)"] = pool.redeem(shares // 4, lp, lp, sender=lp).gas_used
    GAS["redeem (rest of request)"] = pool.redeem(pool.maxRedeem(lp), lp, lp, sender=lp).gas_used
    GAS["notify_income (10% to backstop)"] = income(token, pool, settler, usd(100)).gas_used
    for name, gas in GAS.items():
        print(f"GAS {name}: {gas}")
    assert GAS["deposit (2nd, exact approval)"] <= 80_000
    assert GAS["deposit (2nd, infinite approval)"] <= 80_000
    assert GAS["cover (pool alone, unvested income)"] <= 60_000
    assert GAS["cover (pool alone, all vested)"] <= 60_000
