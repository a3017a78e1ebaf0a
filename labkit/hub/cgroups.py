"""A control group per learner: the memory and CPU limits of a learner's server and all its
kernels and builds, and what they used, on cgroup v1 (separate hierarchies per controller,
as here) or v2 (one unified tree).

:class:`LearnerGroup` is created by the hub's spawner before the server starts
(:meth:`LearnerGroup.create`), joined by the server's first process before it drops root
(:meth:`LearnerGroup.join`, so every child inherits it), read by the load test while the
server runs (:meth:`LearnerGroup.usage`), and emptied and removed when the server stops
(:meth:`LearnerGroup.remove`). The groups sit below the cgroup of the process that computes
them (the hub, and the load test that started it), each named ``labhub-<learner>``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The CFS period the CPU limit is written in, in microseconds (the kernel's default).
CPU_PERIOD_US = 100_000
#: Processes and threads one learner may have at once: a fork bomb stops there, the lab's
#: builds (Go, zig) stay far below.
PIDS_MAX = 2048


@dataclass(frozen=True)
class Usage:
    """What a learner's group has used so far: the highest memory it held (page cache
    included, as the kernel counts it) and its CPU time."""

    peak_bytes: int
    cpu_seconds: float


def own_groups(proc_cgroup: str | None = None) -> dict[str, Path]:
    """This process's cgroup folder per controller (``memory``, ``cpu``, ``cpuacct``), or
    ``{"unified": ...}`` on cgroup v2; ``proc_cgroup`` is the text of /proc/self/cgroup."""
    text = Path("/proc/self/cgroup").read_text() if proc_cgroup is None else proc_cgroup
    found: dict[str, Path] = {}
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            if controller in ("memory", "cpu", "cpuacct", "pids"):
                found[controller] = CGROUP_ROOT / controller / path.lstrip("/")
    if "memory" not in found:
        unified = next((line.split(":", 2)[2] for line in text.splitlines()
                        if line.startswith("0::")), None)
        if unified is not None and (CGROUP_ROOT / "cgroup.controllers").exists():
            return {"unified": CGROUP_ROOT / unified.lstrip("/")}
    return found


@dataclass(frozen=True)
class LearnerGroup:
    """The cgroup folders of one learner: one per v1 controller, or one v2 folder."""

    name: str
    folders: dict[str, Path]

    @classmethod
    def of(cls, learner: str, parents: dict[str, Path] | None = None) -> LearnerGroup:
        """The group of ``learner`` below ``parents`` (this process's groups by default).
        On v2 the group is a sibling of this process's own: a v2 group that holds
        processes cannot hand controllers to its children."""
        parents = own_groups() if parents is None else parents
        name = f"labhub-{learner}"
        if "unified" in parents:
            return cls(name, {"unified": parents["unified"].parent / name})
        return cls(name, {controller: folder / name for controller, folder in parents.items()})

    @property
    def v2(self) -> bool:
        return "unified" in self.folders

    def create(self, memory_bytes: int | None, cpus: float | None) -> None:
        """Make the folders and write the limits: ``memory_bytes`` of memory (no swap beyond
        it on v2), ``cpus`` CPUs' worth of time per period, :data:`PIDS_MAX` processes.
        Raises OSError where the kernel refuses, and when there is no memory controller to
        hold the limit."""
        if not self.v2 and "memory" not in self.folders:
            raise OSError("no memory controller in this process's cgroups: the limits "
                          "cannot be applied")
        if self.v2:
            folder = self.folders["unified"]
            control = folder.parent / "cgroup.subtree_control"  # hand the controllers down
            for controller in ("memory", "cpu", "pids"):
                with contextlib.suppress(OSError):  # already enabled, or not ours to enable
                    control.write_text(f"+{controller}")
            folder.mkdir(exist_ok=True)
            if memory_bytes:
                (folder / "memory.max").write_text(str(memory_bytes))
                with contextlib.suppress(FileNotFoundError):
                    (folder / "memory.swap.max").write_text("0")
            if cpus:
                (folder / "cpu.max").write_text(f"{int(cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
            (folder / "pids.max").write_text(str(PIDS_MAX))
            return
        for folder in self.folders.values():
            folder.mkdir(exist_ok=True)
        if "pids" in self.folders:
            (self.folders["pids"] / "pids.max").write_text(str(PIDS_MAX))
        if memory_bytes and "memory" in self.folders:
            (self.folders["memory"] / "memory.limit_in_bytes").write_text(str(memory_bytes))
        if cpus and "cpu" in self.folders:
            (self.folders["cpu"] / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            (self.folders["cpu"] / "cpu.cfs_quota_us").write_text(str(int(cpus * CPU_PERIOD_US)))

    def join(self) -> None:
        """Move the calling process into the group (its children follow): for the server's
        first process, between fork and exec, while it is still root."""
        for folder in self.folders.values():
            (folder / "cgroup.procs").write_text("0")

    def pids(self) -> list[int]:
        folder = self.folders.get("unified", self.folders.get("memory"))
        if folder is None or not folder.exists():
            return []
        return [int(pid) for pid in (folder / "cgroup.procs").read_text().split()]

    def usage(self) -> Usage:
        """Peak memory and CPU time so far."""
        if self.v2:
            folder = self.folders["unified"]
            peaked = folder / "memory.peak"  # Linux 5.19 and later; else what it holds now
            peak = int((peaked if peaked.exists() else folder / "memory.current").read_text())
            stat = dict(line.split() for line in (folder / "cpu.stat").read_text().splitlines())
            return Usage(peak, int(stat["usage_usec"]) / 1e6)
        peak = int((self.folders["memory"] / "memory.max_usage_in_bytes").read_text())
        cpu = self.folders.get("cpuacct")
        nanoseconds = int((cpu / "cpuacct.usage").read_text()) if cpu is not None else 0
        return Usage(peak, nanoseconds / 1e9)

    def remove(self, timeout: float = 5.0) -> None:
        """Kill what is left in the group and remove its folders."""
        deadline = time.monotonic() + timeout
        for folder in self.folders.values():
            while folder.exists():
                for pid in self.pids():  # again each time: one may have forked meanwhile
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                try:
                    folder.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


def parse_size(text: str) -> int:
    """``"1G"``, ``"512M"``, ``"2048"`` as bytes (JupyterHub's ``mem_limit`` units)."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    text = text.strip().upper()
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)
