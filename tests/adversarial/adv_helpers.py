"""Helpers of the incident replays: conservation/exposure checks and small utilities."""

from __future__ import annotations

from ape import chain, project

from backstop.client.pools import DEFAULT_POOL_PARAMS
from backstop.core.units import quote


class Books:
    """Conservation and exposure checks (docs/design.md, invariants 1, 2, 9)."""

    def __init__(self, system, owners):
        self.system = system
        self.owners = [o if isinstance(o, str) else o.address for o in owners]

    def holders(self) -> set[str]:
        s = self.system
        return {
            s.vault.address, s.backstop.address, s.engine.address, s.treasury,
            *(p.address for p in s.pools.values()), *self.owners,
        }

    def vault_claims(self) -> int:
        """MarginVault's documented identity: sum(collateral) + sum(accrued fees and
        penalties) - sum(entry notional)."""
        s, v = self.system, self.system.vault
        claims = 0
        for segment in s.segments.values():
            for o in self.owners:
                claims += int(v.collateral(o, segment))
        for m in s.markets.values():
            claims += int(s.lens.accrued_fees(m.id)) + int(s.lens.accrued_penalties(m.id))
            for o in self.owners:
                claims -= int(v.position(o, m.id)[1])
        return claims

    def check(self) -> None:
        s = self.system
        token = s.token
        # 1. vault: balance == tracked claims, to the wei
        assert int(token.balanceOf(s.vault)) == self.vault_claims()
        # pools hold exactly what they account for (no donations in these replays)
        for pool in [*s.pools.values(), s.backstop]:
            assert int(token.balanceOf(pool)) == int(pool.managed_assets())
        # every quote unit in existence is held by a tracked party
        assert int(token.totalSupply()) == sum(int(token.balanceOf(h)) for h in self.holders())
        # 2. per market, sizes sum to zero and open interest is the long side
        for m in s.markets.values():
            sizes = [int(s.vault.position(o, m.id)[0]) for o in self.owners]
            assert sum(sizes) == 0, (m.label, sizes)
            assert int(s.lens.open_interest(m.id)) == sum(x for x in sizes if x > 0)
        # the pools, the backstop and the engine never hold a margin account or a position
        self.no_inherited_positions()

    def no_inherited_positions(self) -> None:
        s = self.system
        for holder in [*s.pools.values(), s.backstop, s.engine]:
            for segment in s.segments.values():
                health = s.vault.account_health(holder, segment)
                assert int(health.collateral) == 0 and int(health.mm) == 0 and int(health.notional) == 0
            for m in s.markets.values():
                assert tuple(int(x) for x in s.vault.position(holder, m.id)) == (0, 0)


def pool_state(system, pool) -> tuple[int, int, int]:
    """(managed assets, totalAssets, token balance) of a pool."""
    return int(pool.managed_assets()), int(pool.totalAssets()), int(system.token.balanceOf(pool))


def now() -> int:
    return int(chain.blocks.head.timestamp)


def events(receipt, event_type) -> list:
    return list(receipt.decode_logs(event_type))


def q(system, x) -> int:
    return quote(x, system.decimals)


MAX_UINT256 = 2**256 - 1


def deploy_hostile_market(deployer, treasury):
    """A vault, configurator and one segment's pool (behind a backstop) whose quote token is a
    ReentrantToken, which calls back from inside its own transfers. The pool is redeemable at
    once (the reentrancy lock is what must stop a callback, not a cooldown).
    Returns (token, vault, pool, backstop)."""
    token = project.ReentrantToken.deploy(6, sender=deployer)
    oracle = project.OracleAdapter.deploy(sender=deployer)
    vault = project.MarginVault.deploy(token, oracle, treasury, sender=deployer)
    configurator = project.Configurator.deploy(vault, sender=deployer)
    vault.grantRole(vault.RISK_ADMIN_ROLE(), configurator, sender=deployer)
    configurator.add_segment("majors", sender=deployer)
    backstop = project.BackstopPool.deploy(token, "Backstop LP", "bLP", MAX_UINT256, sender=deployer)
    pool = project.InsurancePool.deploy(
        token, "Hostile LP", "hLP", 0, vault, backstop, MAX_UINT256, 0, sender=deployer
    )
    backstop.grantRole(backstop.INCOME_ROLE(), pool, sender=deployer)
    backstop.set_member(pool, DEFAULT_POOL_PARAMS["draw_cap_bps"], sender=deployer)
    configurator.set_segment_pool(0, pool, sender=deployer)
    pool.set_redeem_delays(0, 3600, sender=deployer)
    return token, vault, pool, backstop

