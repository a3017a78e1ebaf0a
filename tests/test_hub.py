"""The class hub: its parts on their own, and a short load test of the real thing (two
learners on a loopback JupyterHub, notebooks 02 and 03 in their own kernels, each unable to
read the other's files), which must leave no user, process or cgroup behind. The full load
test is `make test-hub`."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.hub.cgroups import CGROUP_ROOT, LearnerGroup, own_groups, parse_size
from labkit.hub.remote import rendered, sanitizers
from labkit.hub.settings import HubSettings, is_learner
from labkit.paths import LAB_ROOT

V1 = """12:memory:/process_api/abc
4:cpu,cpuacct:/
0::/
"""
V2 = "0::/user.slice/session-3.scope\n"


def test_own_groups_reads_cgroup_v1() -> None:
    groups = own_groups(V1)
    assert groups == {"memory": CGROUP_ROOT / "memory/process_api/abc",
                      "cpu": CGROUP_ROOT / "cpu", "cpuacct": CGROUP_ROOT / "cpuacct"}
    learner = LearnerGroup.of("lab-ann", groups)
    assert learner.folders["memory"] == CGROUP_ROOT / "memory/process_api/abc/labhub-lab-ann"
    assert not learner.v2


def test_a_v2_learner_group_is_a_sibling_of_the_hubs_own() -> None:
    learner = LearnerGroup.of("lab-ann", {"unified": CGROUP_ROOT / "user.slice/hub.scope"})
    assert learner.folders == {"unified": CGROUP_ROOT / "user.slice/labhub-lab-ann"}


@pytest.mark.parametrize(("text", "size"), [("2G", 2 * 2**30), ("512M", 512 * 2**20),
                                            ("1.5G", 3 * 2**29), ("4096", 4096)])
def test_sizes_read_as_jupyterhub_writes_them(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_learner_names_cannot_be_system_accounts() -> None:
    assert is_learner("lab-ann") and is_learner("lab-r0x12")
    assert not any(is_learner(name) for name in ("root", "lab-", "lab-Ann", "lab-a/b", "labann"))
    assert not any(is_learner(user.pw_name) for user in pwd.getpwall()
                   if not user.pw_name.startswith("lab-"))


def test_settings_come_back_from_their_variables() -> None:
    settings = HubSettings.from_env({"LABHUB_DIR": "/srv/hub", "LABHUB_PORT": "9000",
                                     "LABHUB_AUTH": "firstuse", "LABHUB_CPU_LIMIT": "0.5"})
    assert HubSettings.from_env(settings.as_env()) == settings
    with pytest.raises(Exception, match="LABHUB_AUTH='ldap'"):
        HubSettings.from_env({"LABHUB_AUTH": "ldap"})
    with pytest.raises(Exception, match="shorter than 8 characters"):
        HubSettings.from_env({"LABHUB_PASSWORD": "short"})


def test_outputs_compare_as_nbval_compares_them() -> None:
    rules = sanitizers()
    stored = [{"output_type": "stream", "name": "stdout", "text": ["loaded at 0x7f00aa\n",
                                                                   "done\n"]}]
    same = [{"output_type": "stream", "name": "stdout", "text": "loaded at 0x7f11bb\n"},
            {"output_type": "stream", "name": "stdout", "text": "done\n"}]
    other = [{"output_type": "stream", "name": "stdout", "text": "loaded at 0x7f11bb\nfailed\n"}]
    assert rendered(stored, rules) == rendered(same, rules)
    assert rendered(stored, rules) != rendered(other, rules)
    error = [{"output_type": "error", "ename": "OSError", "evalue": "nope", "traceback": []}]
    assert "OSError: nope" in rendered(error, rules)


def _learner_leftovers() -> list[str]:
    users = [u.pw_name for u in pwd.getpwall()
             if u.pw_name.startswith(("lab-r", "lab-cull", "lab-login"))]
    groups = [str(p) for p in CGROUP_ROOT.glob("**/labhub-*")] if CGROUP_ROOT.exists() else []
    homes = [str(p) for pattern in ("lab-r*", "lab-cull*", "lab-login*")
             for p in Path("/home").glob(pattern)]
    return users + groups + homes


@pytest.mark.skipif(os.geteuid() != 0, reason="the hub creates a Unix user per learner: root only")
def test_two_learners_at_once_on_a_real_hub() -> None:
    assert _learner_leftovers() == []
    env = {"PATH": os.environ["PATH"] + ":/usr/sbin:/sbin", "HOME": os.environ["HOME"],
           "LANG": "C.UTF-8", "LABHUB_DIR": "/opt/plugin-lab-hub-test", "LABHUB_WARM": "0"}
    proc = subprocess.run([sys.executable, "-m", "labkit.hub", "loadtest", "--learners", "2",
                           "--notebooks", "02,03", "--cull-check", "--login-check"],
                          cwd=LAB_ROOT, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if " lab-r" in line]
    assert len(rows) == 2 and all(" cells ok" in row for row in rows), proc.stdout
    assert "  2 machine    wall" in proc.stdout
    assert "the idle culler stopped an idle server after" in proc.stdout
    assert "a wrong one did not, and root was refused" in proc.stdout
    assert _learner_leftovers() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="creates a Unix user: root only")
def test_a_home_is_prepared_once_and_never_through_a_link(tmp_path: Path) -> None:
    from labkit.hub.config import ADD_USER, prepare_home
    from labkit.hub.loadtest import remove_learner

    settings = HubSettings(folder=tmp_path / "hub")
    (settings.lab).mkdir(parents=True)
    (settings.lab / "README.md").write_text("the lab\n")
    cache = settings.template_home / ".cache" / "plugin-lab"
    cache.mkdir(parents=True)
    (cache / "entry").write_text("built\n")
    settings.state.mkdir()
    bait = tmp_path / "bait"
    bait.mkdir()
    name = "lab-rsym1"
    subprocess.run([*ADD_USER, name], check=True)
    try:
        home = Path(pwd.getpwnam(name).pw_dir)
        (home / ".cache").symlink_to(bait)  # as a learner could have done
        with pytest.raises(ValueError, match="symbolic link"):
            prepare_home(name, settings)
        assert bait.stat().st_uid == 0 and not (bait / "plugin-lab").exists()
        (home / ".cache").unlink()
        prepare_home(name, settings)
        uid = pwd.getpwnam(name).pw_uid
        assert (home / "plugin-lab" / "README.md").stat().st_uid == uid
        assert (home / ".cache" / "plugin-lab").stat().st_uid == uid  # the learner's folder
        assert (home / ".cache" / "plugin-lab" / "entry").stat().st_uid == 0  # a shared link
        shutil.rmtree(home / ".cache")
        (home / ".cache").symlink_to(bait)  # after the first start: never touched again
        prepare_home(name, settings)
        assert not (bait / "plugin-lab").exists()
        with pytest.raises(ValueError, match="not a learner's name"):
            prepare_home("root", settings)
    finally:
        remove_learner(name)
