"""``python -m labkit.hub setup | serve | status | loadtest``: the class hub (run as root).

- ``setup``: make or refresh the hub's folder (:mod:`labkit.hub.setup`).
- ``serve``: set up, then run JupyterHub in the foreground (``make hub``); Ctrl-C stops it.
- ``status``: each learner's server: its processes, its peak memory and CPU time.
- ``loadtest [--learners 1,5,10] [--notebooks 02,03]``: the load test on loopback
  (:mod:`labkit.hub.loadtest`).

Settings come from ``LABHUB_*`` variables (:class:`labkit.hub.settings.HubSettings`).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pwd
import secrets
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import LabkitError
from ..paths import LAB_ROOT
from .cgroups import LearnerGroup
from .settings import JUPYTERHUB_CONFIG, HubSettings, is_learner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.hub", description=__doc__.split(
        "\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="make or refresh the hub's folder")
    commands.add_parser("serve", help="set up, then run the hub (Ctrl-C stops it)")
    commands.add_parser("status", help="memory and CPU of each learner's server")
    load = commands.add_parser("loadtest", help="simulated learners on a loopback hub")
    load.add_argument("--learners", default="1,5,10", help="learners per round (1,5,10)")
    load.add_argument("--notebooks", default="02,03", help="notebook numbers each one runs")
    load.add_argument("--cull-check", action="store_true",
                      help="then check that the idle culler stops an idle server")
    load.add_argument("--login-check", action="store_true",
                      help="then check logins through the form, right and wrong")
    load.add_argument("--limit", type=float, default=1800,
                      help="seconds after which the run is stopped, whatever it is doing")
    args = parser.parse_args(argv)
    try:
        settings = HubSettings.from_env()
        if args.command == "status":
            return _status(settings)
        from .setup import set_up

        set_up = functools.partial(set_up, say=functools.partial(print, flush=True))

        if args.command == "loadtest":
            return _load_test(settings, args.learners, args.notebooks, set_up,
                              args.cull_check, args.login_check, args.limit)
        settings = _with_passwords(settings)
        set_up(settings)
        if args.command == "serve":
            return _serve(settings)
        return 0
    except LabkitError as error:
        print(error, file=sys.stderr)
        return 2


def _with_passwords(settings: HubSettings) -> HubSettings:
    """The event and admin passwords: given, else made once and kept in the state folder."""
    found: dict[str, str] = {}
    settings.state.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.state.chmod(0o700)
    for name, given, length in (("password", settings.password, 12),
                                ("admin_password", settings.admin_password, 40)):
        path = settings.state / name
        if given:
            found[name] = given
        elif path.exists():
            found[name] = path.read_text().strip()
        else:
            found[name] = secrets.token_urlsafe(length)[:length]
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as f:
                f.write(found[name])
    return replace(settings, password=found["password"],
                   admin_password=found["admin_password"])


def _serve(settings: HubSettings) -> int:
    print(f"Plugin Lab's hub: {settings.public_url} (plain HTTP: a room's network only).")
    if settings.auth == "shared":
        where = ("as given in LABHUB_ADMIN_PASSWORD" if os.environ.get("LABHUB_ADMIN_PASSWORD")
                 else f"in {settings.state / 'admin_password'}")
        print(f"Learners log in as lab-<name> with the event password {settings.password!r};"
              f" the admin is {settings.admin}, its password {where}.")
    else:
        print("Learners log in as lab-<name> and choose their password at first login; "
              "there is no admin account.")
    os.chdir(settings.state)
    os.execve(str(settings.venv / "bin" / "jupyterhub"),
              ["jupyterhub", "-f", str(JUPYTERHUB_CONFIG)], settings.hub_environment())


def _status(settings: HubSettings) -> int:
    recorded = settings.state / "cgroups.json"
    if not recorded.exists():
        print(f"no hub has started from {settings.folder} yet")
        return 1
    parents = {name: Path(path) for name, path in json.loads(recorded.read_text()).items()}
    learners = [user.pw_name for user in pwd.getpwall() if is_learner(user.pw_name)]
    print(f"{'learner':<16} {'processes':>9} {'peak MiB':>9} {'CPU s':>8}")
    for name in learners:
        group = LearnerGroup.of(name, parents)
        pids = group.pids()
        usage = group.usage() if pids else None
        print(f"{name:<16} {len(pids):>9} "
              + (f"{usage.peak_bytes / 2**20:9.0f} {usage.cpu_seconds:8.1f}" if usage
                 else f"{'-':>9} {'-':>8}"))
    return 0


def _load_test(settings: HubSettings, learners: str, notebooks: str, set_up: object,
               cull_check: bool, login_check: bool, limit: float) -> int:
    from .loadtest import TEST_PORTS, check_culling, check_logins, load_test

    folder = settings.folder if settings.folder.name.endswith("-test") else \
        settings.folder.with_name(settings.folder.name + "-test")  # never a class's hub
    settings = replace(settings, folder=folder, ip="127.0.0.1",
                       password=secrets.token_urlsafe(12),
                       admin_password=secrets.token_urlsafe(40)[:40],
                       port=TEST_PORTS["port"], hub_port=TEST_PORTS["hub_port"],
                       proxy_api_port=TEST_PORTS["proxy_api_port"])
    set_up(settings)  # type: ignore[operator]
    names = sorted(p.name for p in (LAB_ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    chosen = [f"notebooks/{n}" for n in names if n[:2] in notebooks.split(",")]
    load_test(settings, [int(n) for n in learners.split(",")], chosen, limit_s=limit)
    if cull_check:
        check_culling(settings)
    if login_check:
        check_logins(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
