"""Opt-in speed-ups for tests, fuzzing and benchmarks (see docs/contributing.md, "Throughput")."""

import os


def disable_post_transaction_trace() -> bool:
    """ape 0.8 traces every contract transaction only to print Vyper `print()` logs.

    Backstop's contracts never `print()`, so the trace is pure overhead. Set
    BACKSTOP_TRACE=1 to keep it (e.g. when debugging with print statements).
    """
    if os.environ.get("BACKSTOP_TRACE") == "1":
        return False
    import ape_ethereum.provider as provider

    provider._post_send_transaction = lambda tx, receipt: None
    return True
