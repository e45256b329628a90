"""Memory accounting per training step: resident set size (RSS) and, on a GPU, allocated memory.

Users of Mini-o3's code report RL memory that grows until it runs out; the kit logs these numbers
with every step of rollout, SFT and GRPO so growth shows up in a plot, not in a crash. Linux
`/proc/self/status` gives the current RSS and its peak (`VmHWM`); writing "5" to
`/proc/self/clear_refs` resets the peak, which makes the peak a per-step number.
"""

from __future__ import annotations

import resource
from pathlib import Path

import torch

STATUS = Path("/proc/self/status")


def _status_mb(field: str) -> float | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)  # kB -> MiB
    except OSError:
        pass
    return None


def reset_peak() -> None:
    """Start a new measuring window for `peak_rss_mb` (and the GPU's peak)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: the peak is then the process's lifetime peak
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def snapshot() -> dict[str, float]:
    """Current and peak RSS in MiB since the last `reset_peak` (plus GPU max allocated when there is one)."""
    rss = _status_mb("VmRSS")
    peak = _status_mb("VmHWM")
    if peak is None:  # macOS and friends: ru_maxrss is the lifetime peak (bytes on macOS, kB on Linux)
        peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out = {"rss_mb": rss if rss is not None else peak, "peak_rss_mb": peak}
    if torch.cuda.is_available():
        out["gpu_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out
