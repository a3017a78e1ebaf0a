"""The class hub under load (``make test-hub``; a short run in ``make test``): a real
JupyterHub on loopback, N simulated learners at once. Each is added through the Hub's REST
API (which creates their Unix user), starts their server, runs notebooks through their own
kernel and checks every output against the stored one, then tries to read another learner's
copy of the lab, which must fail. The run prints, per learner, the time to spawn, the time to
run the notebooks, the peak memory and CPU time of their cgroup, and the machine's memory in
use before and at its peak.

Bounded: every wait has a deadline and the whole run a limit; whatever happens, the hub is
stopped, every learner's server, processes, cgroup, Unix user and home are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LabkitError
from .cgroups import LearnerGroup, Usage
from .remote import run_notebook
from .settings import JUPYTERHUB_CONFIG, HubSettings

#: The notebooks a simulated learner runs unless told.
NOTEBOOKS = ("notebooks/02-dlopen-dlsym.ipynb", "notebooks/03-plugin-host.ipynb")
#: Loopback ports of the load test's hub, away from a class hub's defaults.
TEST_PORTS = {"port": 18600, "hub_port": 18681, "proxy_api_port": 18601}


class LoadTestError(LabkitError):
    """A simulated learner's run went wrong: a spawn, a cell, or the isolation check."""


@dataclass
class LearnerRun:
    """What one simulated learner did and used."""

    name: str
    spawn_s: float = 0.0
    run_s: float = 0.0
    usage: Usage | None = None
    failures: list[str] = field(default_factory=list)
    cells: int = 0


@dataclass
class RoundResult:
    """One round of N learners at once, and the machine's memory in use around it."""

    learners: list[LearnerRun]
    wall_s: float
    memory_before: int
    memory_peak: int


class Hub:
    """A JupyterHub process for the load test, stopped (with everything it made) on exit."""

    def __init__(self, settings: HubSettings, say: Callable[[str], None]) -> None:
        self.settings, self.say = settings, say
        self.token = secrets.token_hex(32)
        self.process: subprocess.Popen[bytes] | None = None
        self.learners: list[str] = []

    def __enter__(self) -> Hub:
        state = self.settings.state
        self._lock = open(state / "loadtest.lock", "w")  # held until __exit__
        try:  # one load test per hub folder: a second would share its ports and state
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise LoadTestError(f"another load test is running from {self.settings.folder}",
                                fix="wait for it to end") from None
        for port in (self.settings.port, self.settings.hub_port, self.settings.proxy_api_port):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    self._lock.close()
                    raise LoadTestError(f"port {port} is in use: the load test's hub needs it",
                                        fix="stop what listens there (another hub?)")
        try:  # the hub creates its admin's Unix user; the test removes it if it made it
            pwd.getpwnam(self.settings.admin)
        except KeyError:
            self.learners.append(self.settings.admin)
        (state / "loadtest.token").write_text(self.token)
        for old in [state / "jupyterhub.sqlite", *state.glob("passwords.dbm*"),
                    *(state / "prepared").glob("*")]:
            old.unlink(missing_ok=True)
        env = self.settings.hub_environment()
        with open(state / "hub.log", "wb") as log:
            self.process = subprocess.Popen(
                [str(self.settings.venv / "bin" / "jupyterhub"), "-f", str(JUPYTERHUB_CONFIG)],
                cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_up()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_up(self, timeout: float = 90) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise LoadTestError(f"the hub exited with status {self.process.returncode}",
                                    fix=f"read {self.settings.state / 'hub.log'}")
            try:
                if requests.get(f"{self.settings.url}/hub/api", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise LoadTestError(f"the hub did not answer within {timeout:g} s",
                            fix=f"read {self.settings.state / 'hub.log'}")

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        import requests

        reply = requests.request(method, f"{self.settings.url}/hub/api{path}",
                                 headers={"Authorization": f"token {self.token}"},
                                 timeout=120, **kwargs)
        reply.raise_for_status()
        return reply.json() if reply.content else None

    def add(self, names: Sequence[str]) -> None:
        self.learners += names
        self.api("POST", "/users", json={"usernames": list(names)})

    def __exit__(self, *exc: object) -> None:
        for name in self.learners:
            with contextlib.suppress(Exception):
                self.api("DELETE", f"/users/{name}/server")
        self._stop_process()
        (self.settings.state / "loadtest.token").unlink(missing_ok=True)
        left = []
        for name in self.learners:
            try:
                remove_learner(name)
            except LoadTestError as error:
                left.append(str(error))
        self._lock.close()
        if left:
            raise LoadTestError("the load test could not remove everything it made: "
                                + "; ".join(left), fix="remove what it names by hand")

    def _stop_process(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        with contextlib.suppress(ProcessLookupError):  # the proxy and culler, if left
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def remove_learner(name: str, timeout: float = 30) -> None:
    """Kill a learner's processes, remove their cgroup, Unix user and home; raise
    :class:`LoadTestError` when something stays."""
    with contextlib.suppress(OSError):
        LearnerGroup.of(name).remove()
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    deadline = time.monotonic() + timeout
    while subprocess.run(["pgrep", "-u", str(uid)], capture_output=True).returncode == 0:
        subprocess.run(["pkill", "-KILL", "-u", str(uid)], check=False)
        if time.monotonic() > deadline:
            raise LoadTestError(f"{name}'s processes outlived {timeout:g} s of SIGKILL",
                                fix=f"look at `ps -u {name}`")
        time.sleep(0.1)
    removed = subprocess.run(["userdel", "-r", name], capture_output=True, text=True)
    if removed.returncode not in (0, 12):  # 12: the home was already gone
        raise LoadTestError(f"userdel could not remove {name}: {removed.stderr.strip()}",
                            fix=f"remove it by hand: userdel -r {name}")


def machine_memory_used() -> int:
    """MemTotal - MemAvailable, in bytes."""
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) * 1024


def _learner(hub: Hub, run: LearnerRun, others: list[str], notebooks: Sequence[str]) -> None:
    start = time.monotonic()
    hub.api("POST", f"/users/{run.name}/server")
    deadline = start + 180
    while not hub.api("GET", f"/users/{run.name}")["servers"].get("", {}).get("ready"):
        if time.monotonic() > deadline:
            raise LoadTestError(f"{run.name}'s server was not ready within 180 s",
                                fix=f"read {hub.settings.state / 'hub.log'}")
        time.sleep(0.3)
    run.spawn_s = time.monotonic() - start
    token = hub.api("POST", f"/users/{run.name}/tokens", json={"expires_in": 3600})["token"]
    server = f"{hub.settings.url}/user/{run.name}"
    start = time.monotonic()
    for notebook in notebooks:
        for cell in run_notebook(server, token, Path(notebook)):
            run.cells += 1
            if cell.status != "ok":
                said = " ".join(f"{o.get('ename')}: {o.get('evalue')}" for o in cell.outputs
                                if o.get("output_type") == "error")
                run.failures.append(f"{notebook} {cell.cell_id}: {cell.status} {said}")
            elif cell.mismatch:
                run.failures.append(f"{notebook} {cell.cell_id}: {cell.mismatch}")
    run.run_s = time.monotonic() - start
    run.usage = LearnerGroup.of(run.name).usage()
    for other in others:
        _check_private(server, token, run, other)
    hub.api("DELETE", f"/users/{run.name}/server")


#: Run in a learner's kernel: read another learner's README and list their home.
_SNOOP = """
import os
seen = []
for path in ({readme!r}, {home!r}):
    try:
        os.listdir(path) if os.path.isdir(path) else open(path).read(1)
        seen.append(path)
    except PermissionError:
        pass
print("seen:", seen)
"""


def _check_private(server: str, token: str, run: LearnerRun, other: str) -> None:
    from .remote import RemoteKernel

    home = pwd.getpwnam(other).pw_dir
    kernel = RemoteKernel(server, token, "notebooks/00-start-here.ipynb", timeout=60)
    try:
        _, outputs = kernel.execute(_SNOOP.format(readme=f"{home}/plugin-lab/README.md",
                                                  home=home))
    finally:
        kernel.close()
    said = "".join(o.get("text", "") for o in outputs)
    if said.strip() != "seen: []":
        run.failures.append(f"{run.name} could read {other}'s files: {said.strip()}")


def run_round(hub: Hub, count: int, notebooks: Sequence[str], prefix: str) -> RoundResult:
    """N learners at once: add, spawn, run, check, stop; the machine's memory sampled."""
    names = [f"lab-{prefix}{i}" for i in range(1, count + 1)]
    hub.add(names)
    runs = [LearnerRun(name) for name in names]
    before = machine_memory_used()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            peak[0] = max(peak[0], machine_memory_used())

    def learner(run: LearnerRun) -> None:
        try:
            _learner(hub, run, [n for n in names if n != run.name][:1], notebooks)
        except Exception as exc:
            run.failures.append(f"{type(exc).__name__}: {exc}")

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.monotonic()
    threads = [threading.Thread(target=learner, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - start
    done.set()
    sampler.join()
    return RoundResult(runs, wall, before, peak[0])


def _login(settings: HubSettings, name: str, password: str) -> int:
    """The status of a login through the Hub's form, as a browser sends it (302: in)."""
    import requests

    url = f"{settings.url}/hub/login"
    session = requests.Session()
    session.get(url, timeout=30)
    reply = session.post(url, data={"username": name, "password": password,
                                    "_xsrf": session.cookies.get("_xsrf", "")},
                         allow_redirects=False, timeout=60)
    return reply.status_code


def check_logins(settings: HubSettings, say: Callable[[str], None] = print) -> None:
    """Log in through the form: the right password lets a learner in, a wrong one does not,
    and no name outside the learners' pattern gets in, whatever the password. With
    first-use passwords, the first login sets the password and a second one must match it."""
    with Hub(settings, say) as hub:
        name = "lab-login1"
        hub.learners.append(name)
        first = settings.password if settings.auth == "shared" else "a-first-password"
        tries = [(name, first, 302), (name, first + "x", 403), ("root", first, 403)]
        if settings.auth == "shared" and settings.admin_password:
            tries += [(settings.admin, first, 403), (settings.admin, settings.admin_password, 302)]
        for who, password, expected in tries:
            status = _login(settings, who, password)
            if status != expected:
                raise LoadTestError(
                    f"logging in as {who!r} with {'the' if password == first else 'a wrong'} "
                    f"password gave HTTP {status}, not {expected}",
                    fix=f"read {settings.state / 'hub.log'}")
        say(f"logins ({settings.auth} passwords): the right password let {name} in, a wrong "
            "one did not, and root was refused"
            + (", and the event password did not open the admin's account"
               if len(tries) > 3 else ""))


def check_culling(settings: HubSettings, say: Callable[[str], None] = print,
                  timeout_s: int = 10) -> float:
    """Start a hub whose culler stops servers idle for ``timeout_s`` seconds, start one
    learner's server and leave it idle: the seconds until the culler stopped it."""
    from dataclasses import replace

    quick = replace(settings, cull_timeout=timeout_s, cull_every=max(1, timeout_s // 2))
    with Hub(quick, say) as hub:
        name = "lab-cull1"
        hub.add([name])
        hub.api("POST", f"/users/{name}/server")
        start = time.monotonic()
        while time.monotonic() - start < timeout_s * 12:
            if not hub.api("GET", f"/users/{name}")["servers"]:
                culled = time.monotonic() - start
                say(f"the idle culler stopped an idle server after {culled:.0f} s "
                    f"(cull timeout {timeout_s} s)")
                return culled
            time.sleep(1)
    raise LoadTestError(f"the idle culler left an idle server running for {timeout_s * 12} s "
                        f"with a timeout of {timeout_s} s",
                        fix=f"read {settings.state / 'hub.log'} (the idle-culler service)")


def table(rounds: dict[int, RoundResult]) -> str:
    """The load test's figures, a line per learner and one per round."""
    mib = 2**20
    lines = [f"{'N':>3} {'learner':<10} {'spawn s':>8} {'run s':>7} {'peak MiB':>9} "
             f"{'CPU s':>7}  result"]
    for count, result in rounds.items():
        for run in result.learners:
            usage = run.usage or Usage(0, 0.0)
            outcome = "ok" if not run.failures else f"FAILED: {run.failures[0][:150]}"
            lines.append(f"{count:>3} {run.name:<10} {run.spawn_s:8.1f} {run.run_s:7.1f} "
                         f"{usage.peak_bytes / mib:9.0f} {usage.cpu_seconds:7.1f}  "
                         f"{run.cells} cells {outcome}")
        lines.append(f"{count:>3} {'machine':<10} wall {result.wall_s:.1f} s, memory in use "
                     f"{result.memory_before / mib:.0f} MiB before, "
                     f"{result.memory_peak / mib:.0f} MiB at the peak "
                     f"(+{(result.memory_peak - result.memory_before) / mib:.0f} MiB)")
    return "\n".join(lines)


def load_test(settings: HubSettings, counts: Sequence[int], notebooks: Sequence[str],
              say: Callable[[str], None] = print, limit_s: float = 1800) -> dict[int, RoundResult]:
    """Start a hub from ``settings``, run a round per count, stop it; raise
    :class:`LoadTestError` when a learner failed. A watchdog stops the hub after ``limit_s``."""
    rounds: dict[int, RoundResult] = {}
    with Hub(settings, say) as hub:
        watchdog = threading.Timer(limit_s, hub._stop_process)
        watchdog.daemon = True
        watchdog.start()
        try:
            for number, count in enumerate(counts):
                say(f"round of {count} learner{'s' if count > 1 else ''}...")
                rounds[count] = run_round(hub, count, notebooks, f"r{number}x")
        finally:
            watchdog.cancel()
    failed = [f"{run.name}: {failure}" for result in rounds.values()
              for run in result.learners for failure in run.failures]
    say(table(rounds))
    for failure in failed:
        say(f"failed: {failure[:600]}")
    if failed:
        raise LoadTestError(f"{len(failed)} failure(s) under load; the first: {failed[0]}",
                            fix=f"read {settings.state / 'hub.log'} and the table above")
    return rounds
