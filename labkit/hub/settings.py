"""The class hub's settings, in one place: where it lives, how learners log in, what each
one may use. Read from ``LABHUB_*`` environment variables (``make hub`` passes them on), so
the JupyterHub configuration, the set-up and the load test agree.

The defaults come from measurement (``make test-hub``; the facilitator guide's sizing
table): one learner running every notebook once peaked under 1 GiB in every run (954 MiB at
most), so 2 GiB is a limit that a build's burst does not hit, and one CPU keeps one
learner's Go build from starving the class.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..paths import LAB_ROOT

#: The JupyterHub configuration file every hub of the lab starts with.
JUPYTERHUB_CONFIG = LAB_ROOT / "deploy" / "hub" / "jupyterhub_config.py"

#: Learner names: a prefix no system account has, so the event password never opens one.
LEARNER_PATTERN = r"^lab-[a-z0-9]{1,20}$"


@dataclass(frozen=True)
class HubSettings:
    """Everything the hub, its set-up and its load test share."""

    folder: Path = Path("/opt/plugin-lab-hub")
    ip: str = ""  # "" listens on every interface: the class reaches the presenter's machine
    port: int = 8000
    hub_port: int = 8081
    proxy_api_port: int = 8001
    auth: str = "shared"  # "shared": one event password; "firstuse": each sets their own
    password: str = ""  # the event password (shared), at least 8 characters
    admin: str = "lab-admin"
    admin_password: str = ""  # the admin's own, 32 characters or more (JupyterHub's rule)
    mem_limit: str = "2G"
    cpu_limit: float = 1.0
    cull_timeout: int = 3600  # seconds without activity before a server is stopped
    cull_every: int = 300
    max_servers: int = 40  # servers running at once: the password must not start a hundred
    warm: bool = True  # fill the template's caches with `labkit warm` at set-up
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def venv(self) -> Path:
        return self.folder / "venv"

    @property
    def lab(self) -> Path:
        """The template copy of the lab each learner's own copy is made from."""
        return self.folder / "lab"

    @property
    def template_home(self) -> Path:
        """The home whose caches (labkit's, Go's, zig's) every learner starts from."""
        return self.folder / "template-home"

    @property
    def state(self) -> Path:
        """The hub's database, cookie secret, tokens and logs."""
        return self.folder / "state"

    @property
    def proxy(self) -> Path:
        return self.folder / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"

    @property
    def url(self) -> str:
        """Where this machine reaches the hub (loopback when it listens everywhere)."""
        return f"http://{self.ip or '127.0.0.1'}:{self.port}"

    @property
    def public_url(self) -> str:
        """Where the class reaches it: this machine's name when it listens everywhere."""
        import socket

        return f"http://{self.ip or socket.getfqdn()}:{self.port}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> HubSettings:
        """The settings from ``LABHUB_*`` variables; unset ones keep their defaults."""
        env = dict(os.environ if env is None else env)
        base = cls()
        auth = env.get("LABHUB_AUTH", base.auth)
        if auth not in ("shared", "firstuse"):
            raise InputError(f"LABHUB_AUTH={auth!r} is not an authenticator the hub knows",
                             fix="use LABHUB_AUTH=shared (one event password) or firstuse "
                             "(each learner sets a password at first login)")
        password = env.get("LABHUB_PASSWORD", "")
        if auth == "shared" and password and len(password) < 8:
            raise InputError("LABHUB_PASSWORD is shorter than 8 characters",
                             fix="choose an event password of 8 characters or more")
        admin_password = env.get("LABHUB_ADMIN_PASSWORD", "")
        if admin_password and (len(admin_password) < 32 or admin_password == password):
            raise InputError("LABHUB_ADMIN_PASSWORD must have 32 characters or more and differ "
                             "from the event password (JupyterHub's rule)",
                             fix="choose a longer one, or leave it unset: the hub makes one")
        return cls(
            folder=Path(env.get("LABHUB_DIR", str(base.folder))),
            ip=env.get("LABHUB_IP", base.ip),
            port=int(env.get("LABHUB_PORT", base.port)),
            hub_port=int(env.get("LABHUB_HUB_PORT", base.hub_port)),
            proxy_api_port=int(env.get("LABHUB_PROXY_API_PORT", base.proxy_api_port)),
            auth=auth,
            password=password,
            admin_password=admin_password,
            max_servers=int(env.get("LABHUB_MAX_SERVERS", base.max_servers)),
            mem_limit=env.get("LABHUB_MEM_LIMIT", base.mem_limit),
            cpu_limit=float(env.get("LABHUB_CPU_LIMIT", base.cpu_limit)),
            cull_timeout=int(env.get("LABHUB_CULL_TIMEOUT", base.cull_timeout)),
            cull_every=int(env.get("LABHUB_CULL_EVERY", base.cull_every)),
            warm=env.get("LABHUB_WARM", "1") != "0",
        )

    def hub_environment(self) -> dict[str, str]:
        """The whole environment of the JupyterHub process: its own Python first, the
        system's tools (useradd in /usr/sbin), and these settings."""
        return {"PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                "HOME": str(self.state), "LANG": "C.UTF-8", **self.as_env()}

    def as_env(self) -> dict[str, str]:
        """The ``LABHUB_*`` variables that give these settings back."""
        return {
            "LABHUB_DIR": str(self.folder), "LABHUB_IP": self.ip, "LABHUB_PORT": str(self.port),
            "LABHUB_HUB_PORT": str(self.hub_port),
            "LABHUB_PROXY_API_PORT": str(self.proxy_api_port), "LABHUB_AUTH": self.auth,
            "LABHUB_PASSWORD": self.password, "LABHUB_ADMIN_PASSWORD": self.admin_password,
            "LABHUB_MEM_LIMIT": self.mem_limit,
            "LABHUB_CPU_LIMIT": str(self.cpu_limit),
            "LABHUB_CULL_TIMEOUT": str(self.cull_timeout),
            "LABHUB_CULL_EVERY": str(self.cull_every), "LABHUB_WARM": "1" if self.warm else "0",
            "LABHUB_MAX_SERVERS": str(self.max_servers),
        }


def is_learner(name: str) -> bool:
    return re.fullmatch(LEARNER_PATTERN, name) is not None
