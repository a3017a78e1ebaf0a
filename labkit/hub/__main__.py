"""``python -m labkit.hub setup | serve | status | loadtest``: the class hub (run as root).

- ``setup``: make or refresh the hub's folder (:mod:`labkit.hub.setup`).
- ``serve``: set up, then run JupyterHub in the foreground (``make hub``); Ctrl-C stops it.
- ``status``: each learner's server: memory now and at its peak, CPU time.
- ``loadtest [--learners 1,5,10] [--notebooks 02,03]``: the load test on loopback
  (:mod:`labkit.hub.loadtest`).

Settings come from ``LABHUB_*`` variables (:class:`labkit.hub.settings.HubSettings`).
"""

from __future__ import annotations

import argparse
import functools
import os
import pwd
import secrets
import sys
from dataclasses import replace

from ..errors import LabkitError
from ..paths import LAB_ROOT
from .cgroups import LearnerGroup
from .settings import HubSettings, is_learner


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
    args = parser.parse_args(argv)
    try:
        settings = HubSettings.from_env()
        if args.command == "status":
            return _status()
        from .setup import set_up

        set_up = functools.partial(set_up, say=functools.partial(print, flush=True))

        if args.command == "loadtest":
            return _load_test(settings, args.learners, args.notebooks, set_up,
                              args.cull_check, args.login_check)
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
    for name, given, length in (("password", settings.password, 12),
                                ("admin_password", settings.admin_password, 40)):
        path = settings.state / name
        if given:
            found[name] = given
        elif path.exists():
            found[name] = path.read_text().strip()
        else:
            settings.state.mkdir(parents=True, exist_ok=True)
            found[name] = secrets.token_urlsafe(length)[:length]
            path.write_text(found[name])
            path.chmod(0o600)
    return replace(settings, password=found["password"],
                   admin_password=found["admin_password"])


def _serve(settings: HubSettings) -> int:
    print(f"Plugin Lab's hub: {settings.url} (the class uses this machine's address).")
    print(f"Learners log in as lab-<name>, {settings.auth} password"
          + (f" {settings.password!r}" if settings.auth == "shared" else " chosen at first login")
          + f"; the admin is {settings.admin}, password in {settings.state / 'admin_password'}.")
    env = {"PATH": f"{settings.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
           "HOME": str(settings.state), "LANG": "C.UTF-8", **settings.as_env()}
    os.chdir(settings.state)
    config = LAB_ROOT / "deploy" / "hub" / "jupyterhub_config.py"
    os.execve(str(settings.venv / "bin" / "jupyterhub"),
              ["jupyterhub", "-f", str(config)], env)


def _status() -> int:
    learners = [user.pw_name for user in pwd.getpwall() if is_learner(user.pw_name)]
    print(f"{'learner':<16} {'processes':>9} {'peak MiB':>9} {'CPU s':>8}")
    for name in learners:
        group = LearnerGroup.of(name)
        pids = group.pids()
        usage = group.usage() if pids else None
        print(f"{name:<16} {len(pids):>9} "
              + (f"{usage.peak_bytes / 2**20:9.0f} {usage.cpu_seconds:8.1f}" if usage
                 else f"{'-':>9} {'-':>8}"))
    return 0


def _load_test(settings: HubSettings, learners: str, notebooks: str, set_up: object,
               cull_check: bool, login_check: bool) -> int:
    from .loadtest import TEST_PORTS, check_culling, check_logins, load_test

    settings = replace(settings, ip="127.0.0.1", password=secrets.token_urlsafe(12),
                       port=TEST_PORTS["port"], hub_port=TEST_PORTS["hub_port"],
                       proxy_api_port=TEST_PORTS["proxy_api_port"])
    set_up(settings)  # type: ignore[operator]
    names = sorted(p.name for p in (LAB_ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    chosen = [f"notebooks/{n}" for n in names if n[:2] in notebooks.split(",")]
    load_test(settings, [int(n) for n in learners.split(",")], chosen)
    if cull_check:
        check_culling(settings)
    if login_check:
        check_logins(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
