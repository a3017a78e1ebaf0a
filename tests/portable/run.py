"""``make test-portable``: the lab built as Binder builds it and tested as a learner runs it,
on a second distribution, as a non-root user, with a clean environment, offline.

1. A Debian 13 root filesystem (Python 3.13, glibc 2.41, gcc 14, libabigail 2.6) made by
   mmdebstrap, cached as a tarball under ``<cache>/portable`` and unpacked afresh each run.
2. The Dockerfile ``jupyter-repo2docker --no-build`` prints for this repository is replayed
   in it: every RUN as the user, in the folder and with exactly the environment (``env -i``
   plus the Dockerfile's ENV and ARG values so far) the image build gives it. Its conda
   steps stand for ``make setup``: a ``.venv`` that ``/srv/conda/envs/notebook`` points at,
   so the Dockerfile's PATH finds it. ``binder/postBuild`` runs exactly as the Dockerfile
   runs it, and is timed.
3. With the network cut (``unshare -n``, only loopback up), as the notebook user, in the
   finished image's environment: strict nbval on every notebook and solution, then the test
   suite (the browser and Binder-configuration tests stay on the host).
4. Binder's budget: postBuild's time, the disk size of ``.venv`` and of each cache postBuild
   filled, and the peak memory of the whole nbval run (the sum of every process's
   proportional set size, sampled).

Everything runs in a mount and PID namespace of its own: when the run ends, its mounts and
processes end with it, and the unpacked tree is deleted. The user exists only inside the
root filesystem. Needs root, mmdebstrap and iproute2 (``make test`` installs them).

Usage: ``python tests/portable/run.py [--keep]`` (``--keep`` leaves the unpacked tree).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

LAB = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(LAB))

from labkit.paths import cache_dir  # noqa: E402
from tests.portable.dockerfile import Build, Step, generate, parse  # noqa: E402

SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
#: What a learner's Debian has before the lab: Python with venv, make and git (they cloned
#: the lab), and the tools repo2docker's build itself runs (useradd, CA certificates).
BASE_PACKAGES = ("python3", "python3-venv", "make", "git", "ca-certificates", "passwd")
NB_USER, NB_UID = "jovyan", 1000
#: Tests that need what only the host has: Chromium, and repo2docker's view of the host.
HOST_ONLY_TESTS = "tests/test_binder.py tests/test_browser.py"
#: The Dockerfile's steps that install conda and the environment: make setup stands for them.
CONDA_BASE = r"install-base-env\.bash"
CONDA_ENV = r"MAMBA_EXE\}? env update"
POST_BUILD = r"^\./binder/postBuild$"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the unpacked tree")
    parser.add_argument("--inside", metavar="PLAN", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return _as_init(Inside(json.loads(Path(args.inside).read_text())).run)
    return outside(args.keep)


# -- on the host ---------------------------------------------------------------------------

def outside(keep: bool) -> int:
    """Check what the run needs, prepare the tarball and the plan, run the inside stage in
    its own namespaces, then remove what it unpacked and check nothing is left behind."""
    missing = [tool for tool in ("mmdebstrap", "unshare", "chroot", "ip") if not shutil.which(tool)]
    if os.geteuid() != 0 or missing:
        why = "it runs as root" if os.geteuid() != 0 else f"{', '.join(missing)} missing"
        print(f"test-portable: cannot run here ({why}): it builds a Debian root filesystem with "
              "mmdebstrap and runs the lab in it with chroot and unshare. Fix: run `make test` "
              "as root (it installs mmdebstrap and iproute2 from tests/apt.txt), or skip this "
              "part with `make test PORTABLE=0`", file=sys.stderr)
        return 1
    home = cache_dir() / "portable"
    home.mkdir(parents=True, exist_ok=True)
    _sweep(home)
    tarball = _tarball(home)
    work = home / f"run-{os.getpid()}"
    work.mkdir()
    build = parse(generate(LAB, NB_USER, NB_UID), {"NB_USER": NB_USER, "NB_UID": str(NB_UID)})
    plan = {"tarball": str(tarball), "root": str(work / "root"), "build": _plan_of(build)}
    (work / "plan.json").write_text(json.dumps(plan))
    started = time.monotonic()
    try:
        status = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
             "--kill-child", "--mount-proc", sys.executable, __file__, "--inside",
             str(work / "plan.json")], check=False).returncode
    finally:
        left = _leftovers(work)
        if not keep and not left:  # never with a mount inside: rmtree would follow /dev
            shutil.rmtree(work)
    minutes, seconds = divmod(int(time.monotonic() - started), 60)
    if left:
        print("test-portable: left behind: " + "; ".join(left), file=sys.stderr)
        return 1
    verdict = "passed" if status == 0 else f"FAILED (exit status {status})"
    print(f"test-portable: {verdict} in {minutes} min {seconds} s"
          + (f"; the tree is kept in {work / 'root'}" if keep else ""))
    return status


def _tarball(home: Path) -> Path:
    """The Debian root filesystem, built once by mmdebstrap for these packages."""
    command = ["mmdebstrap", "--quiet", "--variant=apt", f"--include={','.join(BASE_PACKAGES)}",
               SUITE]
    key = hashlib.sha256(" ".join([*command, MIRROR]).encode()).hexdigest()[:12]
    tarball = home / f"debian-{SUITE}-{key}.tar"
    if tarball.exists():
        print(f"== root filesystem: {tarball.name} (cached)", flush=True)
        return tarball
    print(f"== root filesystem: mmdebstrap {SUITE} with {', '.join(BASE_PACKAGES)}", flush=True)
    partial = tarball.with_suffix(".partial.tar")
    start = time.monotonic()
    subprocess.run([*command, str(partial), MIRROR], check=True)
    partial.rename(tarball)
    print(f"   built in {time.monotonic() - start:.0f} s", flush=True)
    return tarball


def _plan_of(build: Build) -> dict[str, object]:
    return {"steps": [vars(s) for s in build.steps], "image_env": build.image_env}


def _sweep(home: Path) -> None:
    """Remove the trees of earlier runs whose process is gone (a run killed midway)."""
    for old in home.glob("run-*"):
        pid = old.name.removeprefix("run-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)


def _leftovers(work: Path) -> list[str]:
    """Mounts under ``work`` and processes rooted in it, seen from the host."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4]
        if mount_point.startswith(str(work)):
            found.append(f"mount {mount_point}")
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "root").startswith(str(work)):
                found.append(f"process {proc.name}")
        except OSError:
            continue
    return found


# -- inside the namespaces -----------------------------------------------------------------

def _as_init(work: Callable[[], int]) -> int:
    """Be PID 1 of the namespace as init is: run ``work`` in a child and reap every process
    orphaned meanwhile (a plugin whose host was killed), which would else stay a zombie."""
    child = os.fork()
    if child == 0:
        status = 1
        try:
            status = work()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    while True:
        pid, status = os.wait()
        if pid == child:
            return os.waitstatus_to_exitcode(status)


class Inside:
    """Unpack, mount, replay the Dockerfile, then test offline. PID 1 of its namespace."""

    def __init__(self, plan: dict[str, object]) -> None:
        self.root = Path(str(plan["root"]))
        self.tarball = Path(str(plan["tarball"]))
        build = plan["build"]
        assert isinstance(build, dict)
        self.steps = [Step(**s) for s in build["steps"]]
        self.image_env: dict[str, str] = build["image_env"]
        self.figures: list[tuple[str, str]] = []

    def run(self) -> int:
        self.root.mkdir()
        subprocess.run(["tar", "-C", str(self.root), "-xf", str(self.tarball)], check=True)
        self._mount()
        self._trust_this_network()
        try:
            self._replay()
            self._budget_on_disk()
            status = self._test_offline()
        except subprocess.CalledProcessError as exc:
            print(f"test-portable: {exc}", file=sys.stderr, flush=True)
            status = 1
        self._print_figures()
        return status

    def _mount(self) -> None:
        for source, target, options in (
            ("proc", "proc", ["-t", "proc"]),
            ("/dev", "dev", ["--rbind"]),
            ("/sys", "sys", ["--rbind"]),
        ):
            subprocess.run(["mount", *options, source, str(self.root / target)], check=True)

    def _trust_this_network(self) -> None:
        """What the machine needs to reach the package registries (name servers, and the CA
        of a proxy that inspects TLS, as this one has): copied from the host, like a
        laptop's own settings. Nothing of the lab is installed here."""
        shutil.copy("/etc/resolv.conf", self.root / "etc/resolv.conf")
        local = Path("/usr/local/share/ca-certificates")
        if local.is_dir() and any(local.iterdir()):
            shutil.copytree(local, self.root / "usr/local/share/ca-certificates",
                            dirs_exist_ok=True)
            self._chroot(["update-ca-certificates"], "root", "/", {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                         quiet=True)

    # -- the image build -------------------------------------------------------------------

    def _replay(self) -> None:
        for step in self.steps:
            if step.instruction == "COPY":
                if re.match(r"(--\S+ )*src/ ", step.argument):
                    self._copy_repo(step)
                continue  # repo2docker's own scripts (conda, the entrypoint): not used here
            if re.search(CONDA_BASE, step.argument):
                self._stand_in_for_conda(step)
            elif re.search(CONDA_ENV, step.argument):
                self._make_setup(step)
            elif re.search(POST_BUILD, step.argument):
                print("== binder/postBuild, as the Dockerfile runs it", flush=True)
                start = time.monotonic()
                self._chroot(["/bin/sh", "-c", step.argument], step.user, step.workdir, step.env)
                self.figures.append(("postBuild", f"{time.monotonic() - start:.0f} s"))
            else:
                print(f"== RUN as {step.user}: {_short(step.argument)}", flush=True)
                self._chroot(["/bin/sh", "-c", step.argument], step.user, step.workdir, step.env)

    def _stand_in_for_conda(self, step: Step) -> None:
        """conda's environment is the lab's .venv: the Dockerfile's PATH leads to it."""
        prefix = step.env["NB_PYTHON_PREFIX"]
        repo = step.env.get("REPO_DIR", step.env["HOME"])
        print(f"== instead of conda: {prefix} -> {repo}/.venv", flush=True)
        link = self.root / prefix.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f"{repo}/.venv")

    def _make_setup(self, step: Step) -> None:
        """The lab's own set-up where the Dockerfile installs environment.yml with mamba."""
        self._copy_repo(step)
        print(f"== make setup, as {step.user} (where the Dockerfile runs mamba)", flush=True)
        start = time.monotonic()
        self._chroot(["make", "setup"], step.user, step.env["REPO_DIR"], step.env)
        self.figures.append(("make setup", f"{time.monotonic() - start:.0f} s"))

    def _copy_repo(self, step: Step) -> None:
        """COPY src/ ${REPO_DIR}/: the files git knows (committed or not), and .git."""
        repo = self.root / step.env["REPO_DIR"].lstrip("/")
        listed = subprocess.run(
            ["git", "-C", str(LAB), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=True).stdout.decode().split("\0")
        for name in [n for n in listed if n] + [".git"]:
            source, target = LAB / name, repo / name
            if not source.exists() and not source.is_symlink():
                continue  # deleted but not yet committed
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir() and not source.is_symlink():
                shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
            else:
                if target.is_symlink() or target.exists():
                    target.unlink()
                shutil.copy2(source, target, follow_symlinks=False)
        subprocess.run(["chown", "-R", f"{NB_UID}:{NB_UID}", str(repo)], check=True)

    # -- measuring and testing -------------------------------------------------------------

    def _budget_on_disk(self) -> None:
        home = self.root / self.image_env["HOME"].lstrip("/")
        for label, path in ((".venv", home / ".venv"),
                            ("~/.cache/plugin-lab", home / ".cache/plugin-lab"),
                            ("~/.cache/go-build", home / ".cache/go-build"),
                            ("~/.cache/zig", home / ".cache/zig"),
                            ("~/go (Go modules and toolchains)", home / "go"),
                            ("~/.cache/pip (make setup's downloads)", home / ".cache/pip")):
            self.figures.append((label, _size(path)))

    def _test_offline(self) -> int:
        env = self.image_env
        repo = env.get("REPO_DIR", env["HOME"])
        print("== offline, as the notebook user: strict nbval on every notebook and solution",
              flush=True)
        start = time.monotonic()
        sampler = _PeakMemory()
        notebooks = self._chroot(["make", "test-notebooks", "CLEAN_ENV="], NB_USER, repo, env,
                                 offline=True, check=False, sampler=sampler)
        self.figures.append(("nbval, every notebook and solution",
                             f"{time.monotonic() - start:.0f} s"))
        self.figures.append(("peak memory of the nbval run (PSS, all processes)",
                             _human(sampler.peak)))
        print("== offline, as the notebook user: the test suite", flush=True)
        start = time.monotonic()
        code = self._chroot(["make", "test-code", "CLEAN_ENV=", f"HOST_ONLY_TESTS={HOST_ONLY_TESTS}"],
                            NB_USER, repo, env, offline=True, check=False)
        self.figures.append(("test suite", f"{time.monotonic() - start:.0f} s"))
        return 0 if notebooks == 0 and code == 0 else 1

    def _print_figures(self) -> None:
        print("== Binder's budget, measured on Debian 13, Python 3.13, as uid 1000", flush=True)
        width = max((len(label) for label, _ in self.figures), default=0)
        for label, value in self.figures:
            print(f"   {label:<{width}}  {value}", flush=True)

    def _chroot(self, argv: list[str], user: str, workdir: str, env: dict[str, str], *,
                offline: bool = False, check: bool = True, quiet: bool = False,
                sampler: _PeakMemory | None = None) -> int:
        """Run ``argv`` in the root filesystem as ``user``, in ``workdir``, with ``env`` and
        nothing else in its environment; ``offline`` cuts the network but for loopback."""
        ids = self._ids(user)
        command = ["chroot", f"--userspec={ids}", str(self.root), "/usr/bin/env", "-i",
                   *(f"{k}={v}" for k, v in env.items()),
                   "/bin/sh", "-c", 'cd "$0" && exec "$@"', workdir, *argv]
        if offline:
            command = ["unshare", "--net", "--", "/bin/sh", "-c",
                       'ip link set lo up && exec "$@"', "sh", *command]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL if quiet else None,
                                start_new_session=True)  # no signal of its reaches this run
        if sampler is not None:
            sampler.watch(proc.pid)
        status = proc.wait()
        if sampler is not None:
            sampler.stop()
        if check and status != 0:
            raise subprocess.CalledProcessError(status, argv)
        return status

    def _ids(self, user: str) -> str:
        for line in (self.root / "etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return f"{fields[2]}:{fields[3]}"
        raise RuntimeError(f"no user {user!r} in the root filesystem's /etc/passwd")


class _PeakMemory:
    """The largest sum, over a process and all its descendants, of their proportional set
    sizes (shared pages divided among the processes that share them), sampled every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._sample, args=(pid,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def _sample(self, pid: int) -> None:
        while not self._done.wait(0.2):
            self.peak = max(self.peak, sum(_pss(p) for p in _tree(pid)))


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(proc.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _pss(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(match[1]) * 1024 if match else 0


def _size(path: Path) -> str:
    """Disk usage of a folder, as du counts it (allocated blocks, each file once)."""
    if not path.exists():
        return "absent"
    total, seen = 0, set()
    for folder, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return _human(total)


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.2f} GiB"


def _short(command: str) -> str:
    text = " ".join(command.split())
    return text if len(text) <= 90 else text[:87] + "..."


if __name__ == "__main__":
    sys.exit(main())
