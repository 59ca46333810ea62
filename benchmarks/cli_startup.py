"""How long `omnicrm --help` and each command's `--help` take, as a user waits for them.

Each help runs as its own process (`python -m omnicrm.cli ... --help`), ``--repeat``
times, interleaved so every command sees the same machine load; the bare interpreter
(`python -c pass`) is measured the same way as the floor. Prints the median and the
slowest wall time of each, the median CPU time (user + system, which a loaded machine
inflates less), and the goal: every median wall time under 0.5 s. Exit status 1 when a
median misses it.

    .venv/bin/python benchmarks/cli_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

GOAL = 0.5


def commands() -> list[list[str]]:
    """`--help` of the group and of every top-level command."""
    import click

    from omnicrm.cli import cli

    ctx = click.Context(cli)
    assert isinstance(cli, click.Group)
    return [["--help"], *([name, "--help"] for name in cli.list_commands(ctx))]


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each command")
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {}
    floor = [sys.executable, "-c", "pass"]
    cases = {"python -c pass": floor}
    for words in commands():
        cases["omnicrm " + " ".join(words)] = [sys.executable, "-m", "omnicrm.cli", *words]
    for _ in range(args.repeat):
        for label, argv in cases.items():
            runs.setdefault(label, []).append(timed(argv))
    width = max(len(label) for label in cases)
    load = os.getloadavg()[0]
    print(f"{args.repeat} runs each, load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':{width}}  wall median  slowest  CPU median  (s; goal: wall < {GOAL})")
    missed = []
    for label, measured in runs.items():
        walls = [wall for wall, _ in measured]
        median = statistics.median(walls)
        cpu = statistics.median(c for _, c in measured)
        mark = ""
        if label != "python -c pass" and median >= GOAL:
            missed.append(label)
            mark = "  over the goal"
        print(f"{label:{width}}  {median:11.3f}  {max(walls):7.3f}  {cpu:10.3f}{mark}")
    print(f"{len(missed)} of {len(cases) - 1} over {GOAL} s")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
