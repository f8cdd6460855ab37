"""Risk layer: fund sizing from real returns (a vectorized numpy model of the margin and liquidation maths,
Monte Carlo over fat-tailed returns with jumps). Depends on backstop.core only: no chain, no ape."""

from backstop.risk.report import load_bands, load_targets

__all__ = ["load_bands", "load_targets"]
