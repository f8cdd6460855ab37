"""scripts/size.py writes its three reports, and load_targets reads the targets back."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from backstop.risk import load_targets
from backstop.risk.data import DataMissing, database_path

ROOT = Path(__file__).resolve().parents[2]


def _have_data() -> bool:
    try:
        database_path()
        return True
    except DataMissing:
        return False


@pytest.mark.skipif(not _have_data(), reason="prices.db absent: run `make install`")
def test_cli_writes_json_csv_png(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts/size.py"), "--paths", "3000", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "size.json").read_text())
    assert set(data["segments"]) == {"majors", "alts"}
    for entry in data["segments"].values():
        assert entry["target_size"] >= entry["es_999"] >= entry["floor"] > 0
        lo, hi = entry["ruin_ci_95"]
        assert lo <= entry["ruin_probability"] <= hi
        assert entry["calibration"]["t_df"] > 2 and entry["paths"] == 3000
    rows = list(csv.DictReader((tmp_path / "size.csv").open()))
    assert [r["segment"] for r in rows] == ["majors", "alts"]
    assert (tmp_path / "size_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    targets = load_targets(tmp_path / "size.json")
    assert targets == {k: v["target_size"] for k, v in data["segments"].items()}
    assert all(isinstance(v, int) for v in targets.values())
