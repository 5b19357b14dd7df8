"""What the benchmark scripts share: where the repository and the bench data are, and
how a process reads its own peak memory."""

from __future__ import annotations

import resource
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BENCH = REPO.parent / "shared" / "bench"


def own_peak_rss_mb() -> float:
    """VmHWM: unlike ru_maxrss it is reset by exec, so the parent's memory is not counted."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
