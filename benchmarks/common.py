"""What the benchmark scripts share: where the repository and the bench data are, and
how a process reads its own peak memory."""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BENCH = REPO.parent / "shared" / "bench"


def own_peak_rss_mb() -> float:
    """VmHWM: unlike ru_maxrss it is reset by exec, so the parent's memory is not counted."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_process(command: list[str], env: dict | None = None) -> tuple[float, float, float, str]:
    """Run `command` from the repository: wall seconds, CPU seconds (user + system of the
    process and every worker it waited for), peak RSS in MB (the largest of them) and its
    stderr. A command that fails raises RuntimeError with that stderr."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, cwd=REPO, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        errors.seek(0)
        text = errors.read().decode()
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(command)} failed: {text}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text
