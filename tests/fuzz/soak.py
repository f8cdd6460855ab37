"""Overnight soak: N parallel `ape test` workers, each with its own Anvil and hypothesis seed.

    python tests/fuzz/soak.py --workers 2 --steps 1000000 [--steps-per-example 200] [--seed 1]

Each worker runs tests/fuzz/test_stateful.py under HYPOTHESIS_PROFILE=soak with
FUZZ_STEPS = steps / workers and --hypothesis-seed = seed + i, so a failure is replayed with
    HYPOTHESIS_PROFILE=soak FUZZ_STEPS=<n> make test TEST_ARGS="-s tests/fuzz/test_stateful.py --hypothesis-seed=<seed>"
Logs go to reports/soak/worker-<i>.log; the summary line sums steps and steps/s.
Run from the project root with the venv's bin and the Anvil binary on PATH (as `make` does).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"\[fuzz\] profile=\S+ examples=(\d+) steps=(\d+) .*invariant_checks=(\d+) elapsed=([\d.]+)s steps/s=([\d.]+)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--steps", type=int, default=int(os.environ.get("FUZZ_STEPS", 1_000_000)))
    ap.add_argument("--steps-per-example", type=int, default=int(os.environ.get("FUZZ_STEPS_PER_EXAMPLE", 200)))
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()

    logs = ROOT / "reports" / "soak"
    logs.mkdir(parents=True, exist_ok=True)
    ape = str(ROOT / ".venv" / "bin" / "ape")
    anvil_bins = sorted((ROOT / "node_modules" / "@foundry-rs").glob("anvil-*/bin"))
    path = os.pathsep.join([*(str(p) for p in anvil_bins), str(ROOT / ".venv" / "bin"), os.environ["PATH"]])
    share = -(-args.steps // args.workers)
    procs = []
    t0 = time.time()
    for i in range(args.workers):
        env = dict(os.environ, PATH=path, HYPOTHESIS_PROFILE="soak", FUZZ_STEPS=str(share),
                   FUZZ_STEPS_PER_EXAMPLE=str(args.steps_per_example))
        cmd = [ape, "test", "tests/fuzz/test_stateful.py", "-s", "-q", "-p", "no:cacheprovider",
               f"--hypothesis-seed={args.seed + i}"]
        log = open(logs / f"worker-{i}.log", "w")
        procs.append((i, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
        print(f"worker {i}: seed {args.seed + i}, {share} steps -> {logs / f'worker-{i}.log'}", flush=True)

    failed, steps, checks = [], 0, 0
    for i, proc, log in procs:
        rc = proc.wait()
        log.close()
        text = (logs / f"worker-{i}.log").read_text()
        m = LINE.search(text)
        if m:
            steps += int(m.group(2))
            checks += int(m.group(3))
            print(f"worker {i}: rc={rc} examples={m.group(1)} steps={m.group(2)} steps/s={m.group(5)}")
        else:
            print(f"worker {i}: rc={rc} (no summary line)")
        if rc != 0:
            failed.append((i, args.seed + i))
    elapsed = time.time() - t0
    print(f"[soak] workers={args.workers} steps={steps} invariant_checks={checks} elapsed={elapsed:.0f}s "
          f"aggregate steps/s={steps / elapsed:.1f}")
    for i, seed in failed:
        print(f"[soak] worker {i} FAILED (seed {seed}): see {logs / f'worker-{i}.log'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
