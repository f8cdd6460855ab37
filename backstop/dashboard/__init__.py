"""Dashboard layer (the top layer; may import every other one): the LP and risk dashboard of `make dashboard`.

`data` reads the chain into dataclasses (no Dash); `app` lays them out in a Dash app (JavaScript served from the
installed package, works offline) and refreshes as blocks arrive. docs/dashboard.md explains every figure.
"""
