"""EIP-170: every deployable's deployed code (runtime + immutables) fits in 24,576 bytes, and
reports/codesize.json (written by `make bench`) is present and well-formed; and the budget:
MarginVault within 22,576 B (funding and size-aware margin are in; what comes next goes to the
lens or a module) and every deployable at least 2,000 B under the limit (the two pools: POOL_HEADROOM), so the next
feature never starts at the wall."""

import json
from pathlib import Path

import pytest

from backstop.reporting import codesize

REPO = Path(__file__).parents[1]
REPORT = REPO / codesize.DEFAULT_PATH


@pytest.fixture(scope="module")
def sizes(project) -> dict[str, codesize.CodeSize]:
    return codesize.measure(project, REPO / codesize.CONTRACTS_DIR)


def test_every_deployable_fits_eip170(sizes):
    over = {name: size.as_dict() for name, size in codesize.over_limit(sizes).items()}
    assert over == {}, f"over EIP-170 ({codesize.EIP170_LIMIT:,} B deployed code): {over}"


VAULT_BUDGET = 22_576
MIN_HEADROOM = 2_000
# The two pools carry pool_shares' whole ERC-20/ERC-4626 surface; issue 13 (rebalancing, the stress flag, members,
# liquidator lending) spent their room. What comes next for them goes to a lens first (docs/pools.md §6).
POOL_HEADROOM = {"InsurancePool": 500, "BackstopPool": 1_000}


def test_margin_vault_within_its_budget(sizes):
    assert sizes["MarginVault"].total <= VAULT_BUDGET, sizes["MarginVault"].as_dict()


def test_every_deployable_keeps_headroom(sizes):
    tight = {name: size.headroom for name, size in sizes.items()
             if size.headroom < POOL_HEADROOM.get(name, MIN_HEADROOM)}
    assert tight == {}, f"less than {MIN_HEADROOM:,} B (pools: {POOL_HEADROOM}) under EIP-170: {tight}"


def test_deployables_are_the_contracts_not_modules_or_mocks(sizes):
    assert {"MarginVault", "VaultLens", "Configurator", "LiquidationEngine", "OracleAdapter", "InsurancePool",
            "BackstopPool", "BackstopLiquidator", "Timelock"} <= set(sizes)
    assert not {"pool_shares", "constants", "packing"} & set(sizes)  # modules: compiled into their importers
    assert not {path.stem for path in (REPO / "contracts" / "mocks").glob("*.vy")} & set(sizes)


def test_sizes_match_the_code_a_deployment_stores(sizes, system, chain):
    """The compiler's figures against the chain's: what EIP-170 limits is the stored code."""
    deployed = {
        "MarginVault": system.vault, "VaultLens": system.lens, "Configurator": system.configurator,
        "LiquidationEngine": system.engine, "OracleAdapter": system.oracle,
        "InsurancePool": system.pools["majors"], "BackstopPool": system.backstop, "Timelock": system.timelock,
        "BackstopLiquidator": system.liquidator,
    }
    stored = {name: len(chain.provider.get_code(c.address)) for name, c in deployed.items()}
    assert stored == {name: sizes[name].total for name in deployed}


def test_report_is_present_and_well_formed(sizes):
    assert REPORT.is_file(), f"{REPORT} is missing: run `make bench`"
    report = codesize.load(REPORT)  # raises on a malformed entry
    assert set(report) == set(sizes), "reports/codesize.json is stale: run `make bench`"
    assert {size.limit for size in report.values()} == {codesize.EIP170_LIMIT}


@pytest.mark.parametrize("entry", [
    {"runtime": 1, "immutables": 2, "total": 4, "limit": 24576, "headroom": 24572},  # total wrong
    {"runtime": 1, "immutables": 2, "total": 3, "limit": 24576},  # a key missing
    {"runtime": "1", "immutables": 2, "total": 3, "limit": 24576, "headroom": 24573},  # not an int
])
def test_load_refuses_a_malformed_report(tmp_path, entry):
    path = tmp_path / "codesize.json"
    path.write_text(json.dumps({"MarginVault": entry}))
    with pytest.raises(ValueError):
        codesize.load(path)


def test_a_trailer_that_disagrees_with_the_runtime_is_refused(project):
    contract_type = project.OracleAdapter.contract_type
    initcode = bytes.fromhex(contract_type.deployment_bytecode.bytecode.removeprefix("0x"))
    with pytest.raises(codesize.CodeSizeError):
        codesize.code_size(initcode, b"\x00")
