"""Insurance pools: deployment and wiring, plus read-only views for LPs and dashboards.

`deploy_pools(system, deployer)` deploys the shared BackstopPool (or joins the one given) and one
InsurancePool per segment of `system`, then wires the roles:
  - each pool: INCOME_ROLE and COVER_ROLE -> system.vault (granted by the constructor), its
    target and floor sizes and its surplus routing;
  - backstop: INCOME_ROLE -> each pool, and set_member(pool, draw cap).
`deploy_liquidator` adds the backstop's liquidator of last resort and wires an engine to it
(`join_liquidator` wires one more engine). The vault side (configurator.set_segment_pool) is the
caller's business (deploy_system).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ape import chain, project
from ape.api import AccountAPI
from ape.contracts import ContractInstance

from backstop.core.config import ZERO_ADDRESS
from backstop.core.units import MAX_UINT256, SHARE_DECIMALS_OFFSET

if TYPE_CHECKING:  # deploy imports this module
    from backstop.client.deploy import System
SECONDS_PER_YEAR = 365 * 86400

# docs/design.md defaults; any key can be overridden through `params`.
DEFAULT_POOL_PARAMS: dict[str, Any] = {
    "deposit_cap": MAX_UINT256,
    "target_size": 0,
    "cooldown": 7 * 86400,
    "redeem_window": 2 * 86400,
    "income_vesting": 86400,
    "backstop_income_share_bps": 1000,
    "max_cover_per_block": MAX_UINT256,
    "floor_size": 0,  # below it the pool keeps all its segment's fees and the backstop refills its losses
    "surplus_backstop_bps": 5000,  # rebalance: the backstop's share of a surplus, the rest to the treasury
    # backstop
    "backstop_deposit_cap": MAX_UINT256,
    "draw_cap_bps": 2500,  # each member pool's cap per window
    "draw_window": 86400,
    "global_draw_cap_bps": 5000,  # all members together, per window
    # liquidator of last resort (BackstopLiquidator), bps of the backstop's managed assets;
    # takeover=False deploys none (ADL follows every unsold auction)
    "takeover": True,
    "takeover_market_cap_bps": 1000,
    "takeover_total_cap_bps": 2000,
    "takeover_loss_limit_bps": 750,
    "takeover_loss_window": 8 * 3600,
}




def role(contract: ContractInstance, name: str) -> bytes:
    return getattr(contract, name)()


def deploy_pools(
    system: System, deployer: AccountAPI, params: dict[str, Any] | None = None,
    backstop: ContractInstance | None = None,
) -> tuple[dict[str, ContractInstance], ContractInstance]:
    """Deploy and wire one InsurancePool per segment, members of a new BackstopPool or of
    `backstop` (another deployment's: the deployer must hold its DEFAULT_ADMIN_ROLE, i.e. before
    the hand-over, or run the same calls through its timelock).

    `params` overrides DEFAULT_POOL_PARAMS; a per-segment override can be given as
    params["segments"][label] = {...}. Returns ({segment label: pool}, backstop).
    """
    p = {**DEFAULT_POOL_PARAMS, **(params or {})}
    per_segment = p.pop("segments", {}) or {}
    token = system.token
    vault_address = system.vault.address if getattr(system, "vault", None) is not None else ZERO_ADDRESS

    if backstop is None:
        backstop = project.BackstopPool.deploy(
            token.address, "Backstop LP", "bLP", p["backstop_deposit_cap"], sender=deployer
        )
        if p["draw_window"] != 86400:
            backstop.set_draw_window(p["draw_window"], sender=deployer)
        if p["global_draw_cap_bps"] != 5000:
            backstop.set_global_draw_cap(p["global_draw_cap_bps"], sender=deployer)
        _set_share_params(backstop, p, deployer)
    income_role = role(backstop, "INCOME_ROLE")
    treasury = getattr(system, "treasury", None) or deployer.address

    pools: dict[str, ContractInstance] = {}
    for label, segment in system.segments.items():
        q = {**p, **per_segment.get(label, {})}
        pool = project.InsurancePool.deploy(
            token.address,
            f"Backstop {label} LP"[:25],
            _symbol(label),
            segment,
            vault_address,
            backstop.address,
            q["deposit_cap"],
            q["target_size"],
            sender=deployer,
        )
        _set_share_params(pool, q, deployer)
        if q["backstop_income_share_bps"] != 1000:
            pool.set_backstop_income_share(q["backstop_income_share_bps"], sender=deployer)
        if q["max_cover_per_block"] != MAX_UINT256:
            pool.set_max_cover_per_block(q["max_cover_per_block"], sender=deployer)
        if q["floor_size"]:
            pool.set_floor_size(q["floor_size"], sender=deployer)
        pool.set_surplus_routing(treasury, q["surplus_backstop_bps"], sender=deployer)
        backstop.grantRole(income_role, pool.address, sender=deployer)
        backstop.set_member(pool.address, q["draw_cap_bps"], sender=deployer)
        pools[label] = pool
    return pools, backstop


def deploy_liquidator(
    backstop: ContractInstance, engine: ContractInstance, deployer: AccountAPI, params: dict[str, Any] | None = None
) -> ContractInstance:
    """The backstop's liquidator of last resort (BackstopLiquidator) with its caps, registered on
    `backstop`, and `engine` wired to it (join_liquidator)."""
    p = {**DEFAULT_POOL_PARAMS, **(params or {})}
    liquidator = project.BackstopLiquidator.deploy(backstop.address, sender=deployer)
    caps = (p["takeover_market_cap_bps"], p["takeover_total_cap_bps"], p["takeover_loss_limit_bps"],
            p["takeover_loss_window"])
    if caps != (1000, 2000, 750, 8 * 3600):
        liquidator.set_caps(*caps, sender=deployer)
    backstop.set_liquidator(liquidator.address, sender=deployer)
    join_liquidator(liquidator, engine, deployer)
    return liquidator


def join_liquidator(liquidator: ContractInstance, engine: ContractInstance, deployer: AccountAPI) -> None:
    """Let `engine` (of any vault on the same quote token) hand unsold positions to `liquidator`:
    TAKEOVER_ROLE on the liquidator, and the engine's set_liquidator (admin roles on both)."""
    liquidator.grantRole(role(liquidator, "TAKEOVER_ROLE"), engine.address, sender=deployer)
    engine.set_liquidator(liquidator.address, sender=deployer)


def _symbol(label: str) -> str:
    return ("i" + "".join(ch for ch in label.upper() if ch.isalnum()))[:5]


def _set_share_params(pool: ContractInstance, p: dict[str, Any], deployer: AccountAPI) -> None:
    if (p["cooldown"], p["redeem_window"]) != (7 * 86400, 2 * 86400):
        pool.set_redeem_delays(p["cooldown"], p["redeem_window"], sender=deployer)
    if p["income_vesting"] != 86400:
        pool.set_income_vesting(p["income_vesting"], sender=deployer)


# ---------------------------------------------------------------- views


@dataclass(frozen=True)
class PendingRequest:
    shares: int
    unlock_at: int
    expires_at: int
    redeemable: int  # maxRedeem now
    state: str  # "none" | "cooling" | "open" | "expired"


@dataclass(frozen=True)
class PoolView:
    address: str
    block: int
    timestamp: int
    total_assets: int  # vested assets backing the shares
    managed_assets: int  # incl. income still vesting
    total_supply: int
    assets_per_share: int  # quote units per 10**decimals shares
    share_decimals: int
    vested_income: int
    unvested_income: int
    vesting_end: int
    paused: bool
    lp: str | None = None
    lp_shares: int = 0
    lp_assets: int = 0
    request: PendingRequest | None = None

    @property
    def price(self) -> Decimal:
        """Assets per share in whole quote units per whole share."""
        return Decimal(self.assets_per_share) / Decimal(10 ** (self.share_decimals - SHARE_DECIMALS_OFFSET))



def pool_view(pool: ContractInstance, lp: AccountAPI | str | None = None, block_id: int | str | None = None) -> PoolView:
    """A consistent snapshot of `pool` (at `block_id`, default latest) and optionally of one LP."""
    kw = {} if block_id is None else {"block_id": block_id}
    block = chain.blocks[block_id if block_id is not None else -1]
    request = None
    lp_shares = lp_assets = 0
    lp_address = None
    if lp is not None:
        lp_address = lp if isinstance(lp, str) else lp.address
        lp_shares = int(pool.balanceOf(lp_address, **kw))
        lp_assets = int(pool.convertToAssets(lp_shares, **kw))
        shares, unlock_at, expires_at = (int(x) for x in pool.pending_request(lp_address, **kw))
        redeemable = int(pool.maxRedeem(lp_address, **kw))
        if shares == 0:
            state = "none"
        elif block.timestamp < unlock_at:
            state = "cooling"
        elif block.timestamp <= expires_at:
            state = "open"
        else:
            state = "expired"
        request = PendingRequest(shares, unlock_at, expires_at, redeemable, state)
    return PoolView(
        address=pool.address,
        block=int(block.number),
        timestamp=int(block.timestamp),
        total_assets=int(pool.totalAssets(**kw)),
        managed_assets=int(pool.managed_assets(**kw)),
        total_supply=int(pool.totalSupply(**kw)),
        assets_per_share=int(pool.assets_per_share(**kw)),
        share_decimals=int(pool.decimals(**kw)),
        vested_income=int(pool.vested_income(**kw)),
        unvested_income=int(pool.unvested_income(**kw)),
        vesting_end=int(pool.vesting_end(**kw)),
        paused=bool(pool.paused(**kw)),
        lp=lp_address,
        lp_shares=lp_shares,
        lp_assets=lp_assets,
        request=request,
    )


def trailing_apy(pool: ContractInstance, *, blocks: int | None = None, seconds: int | None = None, to_block: int | None = None) -> float:
    """Annualized growth of assets per share over the last `blocks` blocks or `seconds` seconds.

    Computed off chain from `assets_per_share` at two block heights (compounded:
    (aps_end / aps_start) ** (year / elapsed) - 1). Losses give a negative APY.
    """
    if (blocks is None) == (seconds is None):
        raise ValueError("give exactly one of blocks= or seconds=")
    end = chain.blocks[to_block if to_block is not None else -1]
    if blocks is not None:
        start_number = max(0, end.number - blocks)
    else:
        start_number = _block_at_or_before(end.timestamp - seconds, end.number)
    start = chain.blocks[start_number]
    elapsed = end.timestamp - start.timestamp
    if elapsed <= 0:
        return 0.0
    aps_start = int(pool.assets_per_share(block_id=start.number))
    aps_end = int(pool.assets_per_share(block_id=end.number))
    if aps_start == 0:
        return 0.0
    return float((Decimal(aps_end) / Decimal(aps_start)) ** (Decimal(SECONDS_PER_YEAR) / Decimal(elapsed)) - 1)


def _block_at_or_before(timestamp: int, high: int) -> int:
    """Binary search for the last block with block.timestamp <= timestamp (0 if none)."""
    lo, hi = 0, high
    if chain.blocks[0].timestamp > timestamp:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if chain.blocks[mid].timestamp <= timestamp:
            lo = mid
        else:
            hi = mid - 1
    return lo
