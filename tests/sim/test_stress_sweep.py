"""A tiny Dask sweep: a LocalCluster worker starts its own Anvil, returns a row per run, and the
CSV and both PNGs are written."""

import csv

from backstop.sim.stress import grid, sweep, write_reports


def test_a_two_run_sweep_on_a_local_cluster(tmp_path):
    specs = grid(gaps=(0.0, 0.4), latencies=(0,), n_traders=2, drift=0.0)
    results = sweep(specs, n_workers=1, progress=False)
    assert [r.gap for r in results] == [0.0, 0.4]  # in the order of the specs
    assert results[0].bad_debt == 0
    assert results[1].bad_debt >= 0 and results[1].pool_nav_start > 0
    assert all(r.invariant_errors == 0 for r in results), [r.first_error for r in results]
    assert all(r.seconds > 0 for r in results)

    paths = write_reports(results, tmp_path)
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [row["label"] for row in rows] == [r.label for r in results]
    assert float(rows[1]["gap"]) == 0.4
    for key in ("nav", "heatmap"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
