# pragma version ~=0.4.3
"""
@title constants
@notice Fixed-point scales and bit masks shared by every Backstop contract. A module with
        constants only: importing it adds no code, and one definition keeps the contracts
        from drifting apart.
"""

# 18-decimal fixed point (ratios, prices, sizes)
WAD: constant(uint256) = 10**18
# basis points
BPS: constant(uint256) = 10_000

MASK_8: constant(uint256) = 2**8 - 1
MASK_16: constant(uint256) = 2**16 - 1
MASK_32: constant(uint256) = 2**32 - 1
MASK_48: constant(uint256) = 2**48 - 1
MASK_64: constant(uint256) = 2**64 - 1
MASK_80: constant(uint256) = 2**80 - 1
MASK_96: constant(uint256) = 2**96 - 1
MASK_128: constant(uint256) = 2**128 - 1
MASK_160: constant(uint256) = 2**160 - 1
MASK_192: constant(uint256) = 2**192 - 1

SECONDS_PER_DAY: constant(uint256) = 86_400
