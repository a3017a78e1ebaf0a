"""Running a notebook in a learner's own server, as the browser would: a kernel started
through the server's REST API, each code cell sent over the kernel's websocket, the outputs
gathered and compared with the notebook's stored outputs as nbval compares them (the lab's
sanitizers applied to both sides, cells marked ``nbval-ignore-output`` skipped).
"""

from __future__ import annotations

import configparser
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import LAB_ROOT

SANITIZE = LAB_ROOT / "tests" / "nbval-sanitize.cfg"
_IGNORE = "nbval-ignore-output"


@dataclass(frozen=True)
class CellRun:
    """One code cell as the learner's kernel ran it, and whether its output matched."""

    cell_id: str
    status: str  # the kernel's reply: ok, error, aborted
    outputs: tuple[dict[str, Any], ...]
    mismatch: str = ""  # empty when the output matched (or is not checked)


def sanitizers(path: Path = SANITIZE) -> list[tuple[re.Pattern[str], str]]:
    """The regex/replace pairs of the lab's nbval sanitize file, in order."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def rendered(outputs: list[dict[str, Any]] | tuple[dict[str, Any], ...],
             rules: list[tuple[re.Pattern[str], str]]) -> str:
    """The text nbval compares: streams joined per name, text/plain of results and displays,
    an error's name and value; then the sanitizers."""
    parts: list[str] = []
    streams: dict[str, str] = {}
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            text = output["text"]
            streams[output["name"]] = streams.get(output["name"], "") + (
                "".join(text) if isinstance(text, list) else text)
        elif kind in ("execute_result", "display_data"):
            plain = output.get("data", {}).get("text/plain")
            if plain is not None:
                parts.append("".join(plain) if isinstance(plain, list) else plain)
        elif kind == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    text = "\n".join([*(f"[{name}]\n{value}" for name, value in sorted(streams.items())), *parts])
    for pattern, replace in rules:
        text = pattern.sub(replace, text)
    return text.strip()


class RemoteKernel:
    """A kernel of a learner's server, driven over its websocket."""

    def __init__(self, server: str, token: str, notebook: str, timeout: float = 600) -> None:
        import requests
        import websocket

        self.server, self.timeout = server.rstrip("/"), timeout
        self.headers = {"Authorization": f"token {token}"}
        reply = requests.post(f"{self.server}/api/kernels", headers=self.headers,
                              json={"name": "python3", "path": notebook}, timeout=60)
        reply.raise_for_status()
        self.kernel_id = reply.json()["id"]
        url = self.server.replace("http", "ws", 1) + f"/api/kernels/{self.kernel_id}/channels"
        self.socket = websocket.create_connection(
            url, header=[f"Authorization: token {token}"], timeout=timeout)
        self.session = uuid.uuid4().hex

    def execute(self, code: str) -> tuple[str, list[dict[str, Any]]]:
        """Run ``code``; the reply's status and the outputs, in order."""
        msg_id = uuid.uuid4().hex
        self.socket.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": self.session,
                       "username": "loadtest", "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        outputs: list[dict[str, Any]] = []
        status, idle = "", False
        deadline = time.monotonic() + self.timeout
        while not (status and idle):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cell did not finish within {self.timeout:g} s")
            message = json.loads(self.socket.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "execute_reply":
                status = content["status"]
            elif kind == "status":
                if content["execution_state"] in ("restarting", "dead"):
                    raise RuntimeError(f"the kernel is {content['execution_state']} (killed by "
                                       "its memory limit?)")
                idle = content["execution_state"] == "idle"
            elif kind in ("stream", "execute_result", "display_data", "error"):
                outputs.append({"output_type": kind, **content})
        return status, outputs

    def close(self) -> None:
        import requests

        self.socket.close()
        requests.delete(f"{self.server}/api/kernels/{self.kernel_id}", headers=self.headers,
                        timeout=60)


def run_notebook(server: str, token: str, notebook: Path, lab: Path = LAB_ROOT,
                 timeout: float = 600) -> list[CellRun]:
    """Run every code cell of ``notebook`` (a path in ``lab``, the same in the learner's
    copy) in a new kernel of ``server``, and compare each output with the stored one."""
    cells = json.loads((lab / notebook).read_text(encoding="utf-8"))["cells"]
    rules = sanitizers(lab / "tests" / "nbval-sanitize.cfg")
    kernel = RemoteKernel(server, token, notebook.as_posix(), timeout)
    runs = []
    try:
        for cell in cells:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            status, outputs = kernel.execute(source)
            mismatch = ""
            if _IGNORE not in source:
                expected = rendered(cell.get("outputs", []), rules)
                got = rendered(outputs, rules)
                if expected != got:
                    mismatch = f"expected {expected[:300]!r}, got {got[:300]!r}"
            runs.append(CellRun(cell.get("id", "?"), status, tuple(outputs), mismatch))
            if status != "ok":
                break
    finally:
        kernel.close()
    return runs
