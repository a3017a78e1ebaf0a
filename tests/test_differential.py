"""explain against dlopen, on many generated libraries: whatever explain says, the loader
must do, every time.

Each example is a small world of shared objects built for real with gcc: a dependency graph
a few levels deep, whose members sit beside the file, in a subfolder, in the folder
LD_LIBRARY_PATH names, elsewhere or nowhere; found through DT_RPATH or DT_RUNPATH with
``$ORIGIN``, through LD_LIBRARY_PATH, or named by a path in DT_NEEDED; with version
scripts whose versions or symbols the installed build lacks; with thread-local storage of
every model (initial-exec, global-dynamic, TLS descriptors) at sizes around what this
process has left of the static TLS surplus, some over-aligned; and files that are programs
(a PIE, a non-PIE executable) where a shared object should be.

A child Python (the zygote) starts once with ``LD_LIBRARY_PATH=llp``, a folder relative to
the current one, and imports labkit; for each example it forks twice into the example's
folder: one copy asks ``labkit.explain`` (whose model of "this process" is then exactly the
process that loads), the other calls ``labkit.load`` (in a copy of its own, since glibc's
loader ends the whole process on some inputs: explain calls that ``loader-abort``). The
verdicts must agree, the kind of explain's first problem must be the kind dlerror names,
and its message must name what dlerror names. This test process asks explain too, with the
example's LD_LIBRARY_PATH passed as ``env``: the same answer.

Nothing here depends on this machine's glibc: the TLS sizes are drawn around the free space
the zygote's explain reports, and the loader decides. The examples are the same on every run
(``derandomize``); ``DIFFERENTIAL_EXAMPLES=400`` draws more for a deeper look.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import labkit

#: The zygote: reads {"path", "cwd"} lines, answers one JSON line each, from a forked child.
ZYGOTE = textwrap.dedent("""
    import json, sys
    import labkit

    def predict(path):
        verdict = labkit.explain(path, load=True)
        return {"ok": verdict.ok, "kinds": [p.kind for p in verdict.problems],
                "first": verdict.problems[0].message if verdict.problems else "",
                "text": str(verdict)}

    def load(path):
        try:
            labkit.load(path)
        except labkit.LoadError as err:
            return err.dlerror or str(err)
        return ""

    def free():
        from labkit.diagnose.loader import Process
        return Process.current().tls.free

    labkit.explain(sys.executable)  # reads what every example needs (libc...) into the caches
    print(json.dumps({"free": free()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        verdict = labkit.run_isolated(predict, request["path"], cwd=request["cwd"], timeout=60)
        loaded = labkit.run_isolated(load, request["path"], cwd=request["cwd"], timeout=60)
        if not verdict.ok:
            answer = {"error": verdict.summary(), "stderr": verdict.stderr[-3000:]}
        elif loaded.ok:
            answer = {**verdict.value, "said": loaded.value}
        else:  # the loader ended the process: what it printed is what it said
            answer = {**verdict.value, "said": f"{loaded.summary()}: {loaded.stderr.strip()}"}
        print(json.dumps(answer), flush=True)
""")

#: What dlerror says, as the kind of problem explain must give first.
LOADER_SAYS = (
    (r"cannot open shared object file", "missing-library"),
    (r"version `[^']+' not found", "missing-version"),
    (r"undefined symbol", "undefined-symbol"),
    (r"cannot allocate memory in static TLS block", "static-tls"),
    (r"cannot dynamically load position-independent executable", "pie-executable"),
    (r"cannot dynamically load executable", "executable"),
    (r"Inconsistency detected by ld.so", "loader-abort"),
)

PLACES = ("beside", "sub", "llp", "other", "nowhere")
FOLDERS = {"beside": ".", "sub": "sub", "llp": "llp", "other": "other"}
SEARCH = ("$ORIGIN", "$ORIGIN/sub", "$ORIGIN/..", "${ORIGIN}/llp", "sub")


@dataclass(frozen=True)
class Lib:
    """One object of an example. ``needs`` are indices of later objects (DT_NEEDED);
    ``place`` where its installed build goes; ``needed_as`` how its needers name it
    (its soname: the file name, a path from their ``$ORIGIN``, or a path from the current
    folder); ``search`` its RPATH or RUNPATH (``runpath``); ``tls`` (model, size): a TLS
    block of that many bytes, ``local`` to the file or exported, aligned to ``align`` when
    not 0; ``ie_on`` a dependency whose exported TLS it reaches with the initial-exec model;
    ``link_versions``/``run_versions``: how many versions (LAB_1...) its version script has
    in the build its needers link against and in the installed build, which binds its
    function to its last version (``defines``: the installed build has the function at all);
    ``kind``: the installed file is a shared object, a PIE or an executable."""

    needs: tuple[int, ...] = ()
    place: str = "beside"
    needed_as: str = "name"
    search: tuple[str, ...] = ()
    runpath: bool = False
    tls: tuple[str, tuple[str, int]] | None = None
    local: bool = False
    align: int = 0
    ie_on: int | None = None
    link_versions: int = 0
    run_versions: int = 0
    defines: bool = True
    kind: str = "shared"


@dataclass(frozen=True)
class Scenario:
    """An example: ``libs[0]`` is the file dlopen opens. A TLS size is relative to the
    free static TLS of the loading process: ``("near", d)`` is free + d bytes,
    ``("half", d)`` free / 2 + d, ``("small", n)`` n bytes."""

    libs: tuple[Lib, ...]


def _tls_size(kind: str, value: int, free: int) -> int:
    return {"near": free + value, "half": free // 2 + value}.get(kind, value)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Mostly worlds that load or nearly load, so that each rule decides some examples."""
    count = draw(st.integers(1, 4))
    libs = []
    for i in range(count):
        later = list(range(i + 1, count))
        needs = tuple(draw(st.lists(st.sampled_from(later), unique=True, max_size=2))) \
            if later else ()
        if i + 1 < count and i + 1 not in needs and draw(st.integers(0, 3)) < 3:
            needs = (i + 1, *needs)  # keep most examples connected, some levels deep
        tls = None
        if draw(st.booleans()):
            model = draw(st.sampled_from(["initial-exec"] * 4 + ["global-dynamic", "gnu2"]))
            size = draw(st.one_of(
                st.tuples(st.just("near"), st.integers(-40, 40)),
                st.tuples(st.just("half"), st.integers(-24, 24)),
                st.tuples(st.just("small"), st.integers(1, 300)),
            ))
            tls = (model, size)
        link_versions = draw(st.sampled_from([0, 0, 0, 1, 2]))
        run_versions = link_versions if draw(st.integers(0, 3)) < 3 else draw(st.integers(0, 2))
        libs.append(dict(
            needs=needs,
            place="beside" if i == 0 else draw(st.sampled_from(
                ["beside", "sub", "sub", "llp", "llp", "other", "nowhere"])),
            needed_as=draw(st.sampled_from(["name"] * 6 + ["origin-path", "cwd-path"])),
            search=tuple(draw(st.lists(st.sampled_from(SEARCH), max_size=3, unique=True))),
            runpath=draw(st.booleans()),
            tls=tls,
            local=draw(st.integers(0, 3)) == 3 if tls else False,
            align=draw(st.sampled_from([0] * 6 + [64, 128])) if tls else 0,
            link_versions=link_versions,
            run_versions=run_versions,
            defines=draw(st.integers(0, 7)) < 7,
            kind={14: "pie", 15: "exe"}.get(draw(st.integers(0, 15)), "shared"),
        ))
    for j, spec in enumerate(libs[1:], start=1):  # most dependencies can be found
        needers = [i for i in range(j) if j in libs[i]["needs"]]
        relation = (FOLDERS.get(libs[needers[0]]["place"]), FOLDERS.get(spec["place"])) \
            if needers else None
        entry = {(".", "."): "$ORIGIN", (".", "sub"): "$ORIGIN/sub", ("sub", "sub"): "$ORIGIN",
                 ("sub", "."): "$ORIGIN/.."}.get(relation) if relation else None
        if entry and entry not in libs[needers[0]]["search"] and draw(st.integers(0, 3)) < 3:
            libs[needers[0]]["search"] += (entry,)
    built = []
    for spec in libs:
        candidates = [d for d in spec["needs"]
                      if libs[d]["tls"] is not None and not libs[d]["local"]]
        spec["ie_on"] = draw(st.sampled_from([None, *candidates])) if candidates else None
        built.append(Lib(**spec))
    return Scenario(tuple(built))


class Zygote:
    """The child Python that forks a fresh loader for every example."""

    def __init__(self, home: Path) -> None:
        (home / "llp").mkdir(exist_ok=True)  # so the loader knows the folder exists
        env = dict(os.environ, LD_LIBRARY_PATH="llp")
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], cwd=home, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.free = int(self._read()["free"])

    def _read(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the zygote died"
        answer: dict[str, object] = json.loads(line)
        return answer

    def probe(self, path: Path, cwd: Path) -> dict[str, object]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"path": str(path), "cwd": str(cwd)}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    z = Zygote(tmp_path_factory.mktemp("zygote"))
    yield z
    z.close()


class World:
    """Builds a scenario into a folder: ``link/`` holds the builds needers link against,
    the installed builds go where each lib's ``place`` says."""

    def __init__(self, root: Path, scenario: Scenario, free: int) -> None:
        self.root = root
        self.scenario = scenario
        self.free = free
        for folder in ("link", "sub", "llp", "other"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        self.link: dict[int, Path] = {}
        for index in reversed(range(len(scenario.libs))):
            self._build(index)

    def file(self, index: int) -> Path:
        return self.root / f"libdx{index}.so"

    def soname(self, index: int) -> str:
        lib = self.scenario.libs[index]
        name = f"libdx{index}.so"
        folder = FOLDERS.get(lib.place, "nowhere")
        return {"name": name, "origin-path": f"$ORIGIN/{folder}/{name}",
                "cwd-path": f"{folder}/{name}"}[lib.needed_as]

    def source(self, index: int, *, versions: int, defines: bool, program: bool) -> str:
        lib = self.scenario.libs[index]
        lines = []
        touch = ""
        if lib.tls is not None:
            model, (kind, value) = lib.tls
            size = max(1, _tls_size(kind, value, self.free))
            aligned = f" __attribute__((aligned({lib.align})))" if lib.align else ""
            tls_model = "global-dynamic" if model == "gnu2" else model
            storage = "static " if lib.local else ""
            lines.append(f'{storage}__thread char dx{index}_tls[{size}] '
                         f'__attribute__((tls_model("{tls_model}"))){aligned};')
            touch += f" + ++dx{index}_tls[{size - 1}]"
        for dep in lib.needs:
            lines.append(f"int dx{dep}_f(void);")
            touch += f" + dx{dep}_f()"
        if lib.ie_on is not None:
            lines.append(f'extern __thread char dx{lib.ie_on}_tls[] '
                         f'__attribute__((tls_model("initial-exec")));')
            touch += f" + ++dx{lib.ie_on}_tls[0]"
        name = f"dx{index}_f" if defines else f"dx{index}_g"
        lines.append(f"int {name}(void) {{ return 1{touch}; }}")
        if program:
            lines.append(f"int main(void) {{ return {name}() & 0; }}")
        return "\n".join(lines) + "\n"

    def _flags(self, index: int, versions: int, defines: bool) -> list[str]:
        lib = self.scenario.libs[index]
        flags = [f"-Wl,-soname,{self.soname(index)}", f"-Wl,-rpath-link={self.root / 'link'}"]
        if lib.search:
            flags += [f"-Wl,-rpath,{':'.join(lib.search)}",
                      "-Wl,--enable-new-dtags" if lib.runpath else "-Wl,--disable-new-dtags"]
        if versions:
            script = self.root / "link" / f"dx{index}-{versions}-{int(defines)}.map"
            name = f"dx{index}_f" if defines else f"dx{index}_g"
            if lib.tls is not None and not lib.local:
                name += f"; dx{index}_tls"
            nodes = [f"LAB_{v} {{ {'global: ' + name + '; ' if v == versions else ''}"
                     f"{'local: *; ' if v == 1 else ''}}}{' LAB_' + str(v - 1) if v > 1 else ''};"
                     for v in range(1, versions + 1)]
            script.write_text("\n".join(nodes) + "\n")
            flags.append(f"-Wl,--version-script={script}")
        return flags

    def _build(self, index: int) -> None:
        lib = self.scenario.libs[index]
        cflags = ["-O1", "-fPIC"]
        if lib.tls is not None and lib.tls[0] == "gnu2":
            cflags.append("-mtls-dialect=gnu2")
        libs = [self.link[dep] for dep in lib.needs]
        name = f"dx{index}.so"
        link = labkit.build_shared(
            self.source(index, versions=lib.link_versions, defines=True, program=False),
            f"lib{name}", out_dir=self.root / "link", default_flags=False, cflags=cflags,
            libs=libs, ldflags=self._flags(index, lib.link_versions, True))
        self.link[index] = link.path
        target = self.root / FOLDERS[lib.place] / f"lib{name}" if lib.place != "nowhere" \
            else None
        if index == 0:
            target = self.file(0)
        if target is None:
            return
        same = lib.run_versions == lib.link_versions and lib.defines and lib.kind == "shared"
        if same:
            shutil.copy2(link.path, target)
            return
        program = lib.kind != "shared"
        source = self.source(index, versions=lib.run_versions, defines=lib.defines,
                             program=program)
        flags = self._flags(index, 0 if program else lib.run_versions, lib.defines)
        if program:
            pie = ["-fPIE", "-pie"] if lib.kind == "pie" else ["-fno-PIE", "-no-pie"]
            built = labkit.build_executable(
                source, f"lib{name}", out_dir=self.root / "link" / "programs",
                default_flags=False, cflags=["-O1", *pie, *cflags[2:]], libs=libs,
                ldflags=[*pie, "-Wl,--allow-shlib-undefined", *flags[1:]])
        else:
            built = labkit.build_shared(source, f"lib{name}", out_dir=self.root / "link" /
                                        f"run{index}", default_flags=False, cflags=cflags,
                                        libs=libs, ldflags=flags)
        shutil.copy2(built.path, target)


def said_kind(dlerror: str) -> str:
    return next((kind for pattern, kind in LOADER_SAYS if re.search(pattern, dlerror)),
                f"unknown: {dlerror}")


def _named(dlerror: str) -> str:
    """What dlerror names as the culprit: the missing file, version or symbol, or the file
    that failed."""
    for pattern in (r"([^\s:]+): cannot open shared object file", r"version `([^']+)'",
                    r"undefined symbol: (\w+)", r"^([^\s:]+): cannot"):
        match = re.search(pattern, dlerror)
        if match:
            return Path(match[1]).name
    return ""


def check(world: World, zygote: Zygote) -> None:
    root = world.root
    child = zygote.probe(world.file(0), root)
    assert "error" not in child, child
    said = str(child["said"])
    loaded = not said
    context = f"\nscenario: {world.scenario}\nexplain: {child['text']}\ndlerror: {said}"
    event(f"dlopen: {said_kind(said) if said else 'loads'}")
    assert child["ok"] is loaded, context
    if not loaded:
        kinds = child["kinds"]
        assert isinstance(kinds, list)
        assert kinds[0] == said_kind(said), context
        assert _named(said) in str(child["first"]), context
    # the same question from this process, with LD_LIBRARY_PATH given as env (and in the
    # example's folder, which relative paths in DT_NEEDED and RPATH are relative to)
    before = Path.cwd()
    os.chdir(root)
    try:
        here = labkit.explain(world.file(0), env={"LD_LIBRARY_PATH": str(root / "llp")},
                              load=True)
    finally:
        os.chdir(before)
    here_kinds = [p.kind for p in here.problems]
    assert here.ok is loaded, f"{context}\nhere: {here}"
    if not loaded:
        assert here_kinds[0] == said_kind(said), f"{context}\nhere: {here}"


# The cases explain used to miss, each pinned: a dependency's dependency that is missing;
# initial-exec TLS one byte over and exactly at what is free, and far over; TLS aligned
# more strictly than the static block; a PIE and an executable offered as the plugin, and
# as a dependency; a version the installed build lacks; a symbol bound to another version.
DEEP_MISSING = Scenario((Lib(needs=(1,), search=("$ORIGIN/sub",)),
                         Lib(needs=(2,), place="sub"), Lib(place="nowhere")))
TLS_OVER = Scenario((Lib(tls=("initial-exec", ("near", 1))),))
TLS_EXACT = Scenario((Lib(tls=("initial-exec", ("near", 0))),))
TLS_TWO = Scenario((Lib(needs=(1,), tls=("initial-exec", ("half", 0)), search=("$ORIGIN/sub",)),
                    Lib(place="sub", tls=("initial-exec", ("half", 8)))))
TLS_ALIGNED = Scenario((Lib(tls=("initial-exec", ("small", 16)), align=128),))
TLS_DESCRIPTORS = Scenario((Lib(needs=(1,), tls=("initial-exec", ("near", -400))),
                            Lib(tls=("gnu2", ("small", 400)))))
PIE = Scenario((Lib(kind="pie"),))
EXE = Scenario((Lib(kind="exe"),))
PIE_DEP = Scenario((Lib(needs=(1,), search=("$ORIGIN",)), Lib(kind="pie")))
OLD_VERSION = Scenario((Lib(needs=(1,), search=("$ORIGIN/sub",)),
                        Lib(place="sub", link_versions=2, run_versions=1)))
MOVED_SYMBOL = Scenario((Lib(needs=(1,)), Lib(place="llp", link_versions=1, run_versions=2)))
RUNPATH_IS_NOT_INHERITED = Scenario((Lib(needs=(1,), search=("$ORIGIN/sub",), runpath=True),
                                     Lib(needs=(2,), place="sub"), Lib(place="sub")))
RPATH_IS_INHERITED = replace(RUNPATH_IS_NOT_INHERITED, libs=(
    replace(RUNPATH_IS_NOT_INHERITED.libs[0], runpath=False),
    *RUNPATH_IS_NOT_INHERITED.libs[1:]))
PATH_IN_NEEDED = Scenario((Lib(needs=(1,)), Lib(place="sub", needed_as="origin-path")))


@settings(max_examples=int(os.environ.get("DIFFERENTIAL_EXAMPLES", "80")), deadline=None,
          derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@example(DEEP_MISSING)
@example(TLS_OVER)
@example(TLS_EXACT)
@example(TLS_TWO)
@example(TLS_ALIGNED)
@example(TLS_DESCRIPTORS)
@example(PIE)
@example(EXE)
@example(PIE_DEP)
@example(OLD_VERSION)
@example(MOVED_SYMBOL)
@example(RUNPATH_IS_NOT_INHERITED)
@example(RPATH_IS_INHERITED)
@example(PATH_IN_NEEDED)
@given(scenarios())
def test_explain_agrees_with_dlopen(zygote: Zygote, tmp_path_factory: pytest.TempPathFactory,
                                    scenario: Scenario) -> None:
    world = World(tmp_path_factory.mktemp("world"), scenario, zygote.free)
    check(world, zygote)
