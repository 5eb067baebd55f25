"""CPU accounting from /proc for the benchmarks: a process's CPU seconds, PostgreSQL's, the whole machine's.

Every function returns zeros where /proc is missing (not Linux), so a benchmark still runs and says "0 %".
"""

from __future__ import annotations

import contextlib
import os


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc (0 where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL process of this machine, by pid (empty where /proc is missing)."""
    out: dict[int, float] = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if entry.name.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry.name}/comm") as f:
                if f.read().strip() in ("postgres", "postmaster"):
                    out[int(entry.name)] = process_cpu_s(int(entry.name))
    return out


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat ((0, 0) where there is none)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))
