"""A tiny Dask sweep: a LocalCluster worker starts its own Anvil, returns a row per run in the
order of the specs, and the CSV and both PNGs are written."""

import csv

from backstop.sim.stress import grid, sweep, write_reports


def test_a_two_run_sweep_on_a_local_cluster(tmp_path):
    specs = grid(gaps=(0.2,), latencies=(0, 120))  # the keeper misses 2 updates of the sell-off
    results = sweep(specs, n_workers=1, progress=False)
    assert [(r.gap, r.latency) for r in results] == [(0.2, 0), (0.2, 120)]
    assert all(not r.failed and r.invariant_errors == 0 for r in results), [(r.failed, r.first_error) for r in results]
    prompt, late = results
    assert 0 < prompt.bad_debt < late.bad_debt  # a late keeper meets deeper deficits
    assert prompt.pool_drawdown < late.pool_drawdown
    assert all(r.winners_unpaid == 0 and r.seconds > 0 for r in results)

    paths = write_reports(results, tmp_path)
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [row["label"] for row in rows] == [r.label for r in results]
    assert [int(row["bad_debt"]) for row in rows] == [r.bad_debt for r in results]
    for key in ("nav", "heatmap"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
