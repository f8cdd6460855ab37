"""Targets and floors from `make size` reach the pools at deploy (docs/pools.md §1): load_bands reads size.json,
with_bands rescales to the deployment's quote decimals, deploy_system sets both on every named segment pool."""

import json

from backstop.client.deploy import deploy_system, with_bands
from backstop.core.config import SystemConfig
from backstop.risk import load_bands, load_targets


def _size_json(tmp_path, segments: dict[str, dict]) -> str:
    path = tmp_path / "size.json"
    path.write_text(json.dumps({"meta": {}, "segments": segments}))
    return str(path)


def test_load_bands_reads_target_and_floor_and_caps_the_floor_at_the_target(tmp_path):
    path = _size_json(tmp_path, {
        "majors": {"target_size": 5_000_000, "floor": 2_000_000, "quote_decimals": 6},
        "alts": {"target_size": 1_000, "floor": 3_000},  # a floor above the target is cut to it
    })
    assert load_bands(path) == {"majors": (5_000_000, 2_000_000, 6), "alts": (1_000, 1_000, None)}
    assert load_targets(path) == {"majors": 5_000_000, "alts": 1_000}


def test_with_bands_rescales_to_the_deployment_decimals_and_keeps_unnamed_segments():
    config = SystemConfig(quote_decimals=18, pools={"segments": {"alts": {"floor_size": 7}}})
    banded = with_bands(config, {"majors": (5_000_000, 2_000_000, 6), "unknown": (1, 1, 6)})
    per_segment = banded.pools["segments"]
    assert per_segment["majors"] == {"target_size": 5 * 10**18, "floor_size": 2 * 10**18}
    assert per_segment["alts"] == {"floor_size": 7}
    assert "unknown" not in per_segment
    assert config.pools["segments"] == {"alts": {"floor_size": 7}}  # the input is not mutated


def test_deploy_sets_each_pools_target_and_floor(deployer, tmp_path):
    path = _size_json(tmp_path, {"majors": {"target_size": 9_000_000_000, "floor": 4_000_000_000, "quote_decimals": 6}})
    notes: list[str] = []
    system = deploy_system(deployer, with_bands(SystemConfig(), load_bands(path), note=notes.append))
    majors = system.pools["majors"]
    assert (majors.target_size(), majors.floor_size()) == (9_000_000_000, 4_000_000_000)
    assert (system.pools["alts"].target_size(), system.pools["alts"].floor_size()) == (0, 0)
    assert notes == ["majors pool target_size 9,000,000,000, floor 4,000,000,000"]
