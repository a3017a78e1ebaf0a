"""The class hub's JupyterHub configuration: ``deploy/hub/jupyterhub_config.py`` calls
:func:`configure`. Imported by the hub's own Python (``<hub folder>/venv``, with JupyterHub),
never by the notebooks.

- Learners log in with one event password (JupyterHub's ``SharedPasswordAuthenticator``) or
  set their own at first login (``FirstUseAuthenticator``); either creates the learner's Unix
  user, home mode 0700, on first login or when the facilitator adds them. Names must match
  :data:`~labkit.hub.settings.LEARNER_PATTERN`, so no system account can be logged into.
- Each server runs as its learner (``LocalProcessSpawner``) in a cgroup of its own
  (:mod:`labkit.hub.cgroups`) with the memory and CPU limits, which
  ``LocalProcessSpawner`` alone would only pass on as variables.
- Before the first start, the learner gets a copy of the lab and of the template's caches:
  labkit's build cache and Go's caches as hard links (their files are never rewritten, only
  added to), zig's as a real copy (zig rewrites its manifests), every folder their own.
- jupyterhub-idle-culler stops servers idle for ``cull_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

from .cgroups import LearnerGroup, own_groups, parse_size
from .settings import LEARNER_PATTERN, HubSettings, is_learner

#: The first uid useradd gives an ordinary user (Debian's UID_MIN): nothing below it is a
#: learner, whatever its name.
FIRST_UID = 1000

#: Caches copied into a learner's home: (path below the home, how).
CACHES = ((".cache/plugin-lab", "link"), (".cache/go-build", "link"), ("go/pkg/mod", "link"),
          (".cache/zig", "copy"), (".cache/wasmtime", "copy"))
#: What useradd gives a learner: a home only they can read, and no login shell (a learner
#: works through the hub, not over ssh).
ADD_USER = ["useradd", "--create-home", "--key", "HOME_MODE=0700",
            "--shell", "/usr/sbin/nologin", "--comment", "Plugin Lab learner"]


def hub_classes(auth: str) -> tuple[type, type]:
    """The authenticator for ``auth`` (``shared`` or ``firstuse``) and the spawner, made from
    JupyterHub's classes, which only the hub's own Python has (so this module imports
    without them)."""
    from jupyterhub.auth import LocalAuthenticator
    from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid

    if auth == "firstuse":
        from firstuseauthenticator import FirstUseAuthenticator as Base
    else:
        from jupyterhub.authenticators.shared import SharedPasswordAuthenticator as Base

    class LabAuthenticator(LocalAuthenticator, Base):  # type: ignore[misc]
        """The chosen authenticator, creating each learner's Unix user; it adds no one whose
        name is not a learner's (an admin's API call included)."""

        async def add_user(self, user: Any) -> Any:
            if not is_learner(user.name) and user.name not in self.admin_users:
                raise ValueError(f"{user.name!r} is not a learner's name (lab-...)")
            return await super().add_user(user)

    class CgroupSpawner(LocalProcessSpawner):  # type: ignore[misc]
        """``LocalProcessSpawner`` whose server, kernels and builds share one cgroup per
        learner, with ``mem_limit`` and ``cpu_limit`` written into it."""

        def make_preexec_fn(self, name: str) -> Any:
            setuid = set_user_setuid(name)
            group = LearnerGroup.of(self.user.name)

            def preexec() -> None:
                group.join()  # still root: move in, then drop to the learner
                setuid()

            return preexec

        async def start(self) -> Any:
            name = self.user.name
            if not is_learner(name) or pwd.getpwnam(name).pw_uid < FIRST_UID:
                raise ValueError(f"the hub starts servers for learners only, not {name!r}")
            LearnerGroup.of(name).create(
                parse_size(str(self.mem_limit)) if self.mem_limit else None,
                float(self.cpu_limit) if self.cpu_limit else None)
            return await super().start()

        async def stop(self, now: bool = False) -> None:
            await super().stop(now=now)
            LearnerGroup.of(self.user.name).remove()

    return LabAuthenticator, CgroupSpawner


def prepare_home(name: str, settings: HubSettings) -> None:
    """Give learner ``name`` a copy of the lab and the template's caches, once: at their
    first start, before they have ever run anything in their home. Root never writes in a
    home again afterwards (a learner could by then have planted a symlink to anywhere), and
    never follows a link in it: a marker outside the home, in the hub's state, says it is
    done."""
    if not is_learner(name):
        raise ValueError(f"{name!r} is not a learner's name; the hub prepares learners only")
    done = settings.state / "prepared" / name
    if done.exists():
        return
    user = pwd.getpwnam(name)
    if user.pw_uid < FIRST_UID:
        raise ValueError(f"{name!r} has uid {user.pw_uid}, a system account's")
    home = Path(user.pw_dir)
    owner = f"{user.pw_uid}:{user.pw_gid}"
    for part in (home, home / ".cache", home / "go", home / "go" / "pkg"):
        if part.is_symlink():
            raise ValueError(f"{part} is a symbolic link; the hub will not write through it")
    lab = home / "plugin-lab"
    if not lab.exists():
        subprocess.run(["cp", "-a", "--no-preserve=ownership", str(settings.lab), str(lab)],
                       check=True)
        subprocess.run(["chown", "-R", "-h", owner, str(lab)], check=True)
    for below, how in CACHES:
        source, target = settings.template_home / below, home / below
        if not source.exists() or target.exists() or target.is_symlink():
            continue
        for parent in reversed(target.relative_to(home).parents[:-1]):
            folder = home / parent
            if not folder.exists():
                folder.mkdir()
                os.chown(folder, user.pw_uid, user.pw_gid, follow_symlinks=False)
        subprocess.run(["cp", "-al" if how == "link" else "-a", str(source), str(target)],
                       check=True)
        owned = ["-type", "d"] if how == "link" else []  # a link's file stays root's, read-only
        subprocess.run(["find", str(target), *owned, "-exec", "chown", "-h", owner, "{}", "+"],
                       check=True)
    done.parent.mkdir(mode=0o700, exist_ok=True)
    done.touch()


async def _prepare(spawner: Any, settings: HubSettings) -> None:
    """The pre-spawn hook: :func:`prepare_home` in a thread, so the copies do not hold up the
    hub's other logins and spawns."""
    await asyncio.to_thread(prepare_home, spawner.user.name, settings)


def configure(c: Any, settings: HubSettings | None = None) -> None:
    """Fill JupyterHub's config object ``c`` for the class hub."""
    s = HubSettings.from_env() if settings is None else settings
    state = s.state
    c.JupyterHub.ip = s.ip
    c.JupyterHub.port = s.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = s.hub_port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.proxy_api_port}"
    c.ConfigurableHTTPProxy.command = [str(s.proxy)]
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "cookie_secret")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True

    auth, spawner = hub_classes(s.auth)
    c.JupyterHub.authenticator_class = auth
    if s.auth == "firstuse":
        c.LabAuthenticator.dbm_path = str(state / "passwords.dbm")
        c.LabAuthenticator.min_password_length = 8
    else:
        c.LabAuthenticator.user_password = s.password
        if s.admin_password:
            c.LabAuthenticator.admin_password = s.admin_password
    c.LabAuthenticator.create_system_users = True
    c.LabAuthenticator.add_user_cmd = ADD_USER
    c.Authenticator.allow_all = True
    # an admin only where a password of its own guards it: with first-use passwords, the
    # first person to log in as the admin would become it
    c.Authenticator.admin_users = {s.admin} if s.auth == "shared" and s.admin_password else set()
    c.Authenticator.username_pattern = LEARNER_PATTERN
    c.JupyterHub.active_server_limit = s.max_servers
    c.JupyterHub.concurrent_spawn_limit = 10

    c.JupyterHub.spawner_class = spawner
    c.Spawner.cmd = [str(s.venv / "bin" / "jupyterhub-singleuser")]
    c.Spawner.default_url = "/lab/tree/notebooks/00-start-here.ipynb"
    c.Spawner.notebook_dir = "~/plugin-lab"
    c.Spawner.mem_limit = s.mem_limit
    c.Spawner.cpu_limit = s.cpu_limit
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    c.LocalProcessSpawner.env_keep = []  # nothing of root's environment reaches a learner
    c.Spawner.environment = {
        "PATH": f"{s.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": lambda spawner: f"{pwd.getpwnam(spawner.user.name).pw_dir}/plugin-lab",
        "SHELL": "/bin/bash",  # for JupyterLab's terminals: the login shell is nologin
    }
    if s.warm:  # the template's module cache holds every module: no network for Go
        c.Spawner.environment["GOPROXY"] = "off"
    c.Spawner.pre_spawn_hook = lambda spawner: _prepare(spawner, s)
    (state / "cgroups.json").write_text(json.dumps(  # where `status` finds the learners
        {name: str(path) for name, path in own_groups().items()}))

    services: list[dict[str, Any]] = [{
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                    f"--timeout={s.cull_timeout}", f"--cull-every={s.cull_every}"],
    }]
    roles: list[dict[str, Any]] = [{
        "name": "idle-culler", "services": ["idle-culler"],
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    }]
    token = state / "loadtest.token"
    if token.exists():  # the load test's service: it adds learners and runs their kernels
        services.append({"name": "loadtest", "api_token": token.read_text().strip()})
        roles.append({"name": "loadtest", "services": ["loadtest"],
                      "scopes": ["admin:users", "admin:servers", "tokens", "access:servers",
                                 "list:users", "read:users"]})
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles
    os.umask(0o022)
