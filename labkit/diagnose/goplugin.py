"""Will this Go plugin open in that Go host? The Go runtime's rules, checked from the files.

``plugin.Open`` in the host refuses a plugin, or stops the whole host, for reasons that sit
in the two binaries before anything runs (Go's ``runtime/plugin.go`` and
``plugin/plugin_dlopen.go``):

- the host was built with ``CGO_ENABLED=0``: its ``plugin`` package is a stub that answers
  "plugin: not implemented" (the Kong thread in the seeds);
- the host is linked statically: there is no dynamic loader to ask, "Dynamic loading not
  supported";
- the host does not import ``plugin`` at all, or the file is not a ``-buildmode=plugin``
  plugin: the runtime finds no plugin module data and throws a fatal error;
- the two were built by different Go releases: the host refuses the plugin, or dies when its
  runtime cannot read the plugin's module data (see :func:`release_skew`);
- a package linked into both was compiled differently (its source, a build tag,
  ``-trimpath``...): "plugin was built with a different version of package X", for the first
  such package in the plugin's link order.

:func:`go_problems` returns one :class:`~labkit.diagnose.why.Problem` per rule broken, worded
with the message the Go runtime gives, so a learner can match prediction and reality.
"""

from __future__ import annotations

from ..inspect.elf import ElfInfo
from ..inspect.goinfo import GoInfo
from ..paths import show
from .why import Problem

#: Build settings that change how packages compile, hence their fingerprints.
COMPILE_SETTINGS = ("-trimpath", "-tags", "-gcflags", "-asmflags", "-race", "-msan", "-asan",
                    "-cover", "CGO_ENABLED", "CGO_CFLAGS", "GOEXPERIMENT", "GOAMD64", "GOARM64",
                    "GOARCH", "GOOS")


def go_problems(plugin: GoInfo, host: GoInfo | None, host_elf: ElfInfo | None) -> list[Problem]:
    """Why ``plugin`` will not open in ``host`` (a Go program), per the Go runtime's rules.

    ``host`` is None when the host is not a Go program; ``host_elf`` is the host's ELF
    reading (for static linking). An empty list means the runtime will accept it.
    """
    if host is None:
        return [Problem(
            "go-host-not-go",
            f"{show(plugin.path)} is a Go plugin ({plugin.go_version}); only a Go program "
            "can open it, with plugin.Open, and this host is not one",
            "load it from a Go host built by the same toolchain, or build a C-callable "
            "library instead (go build -buildmode=c-shared)",
        )]
    problems = _host_problems(host, host_elf)
    if plugin.buildmode != "plugin":
        problems.append(Problem(
            "go-not-plugin",
            f"{show(plugin.path)} was built with -buildmode={plugin.buildmode}, not plugin: "
            "plugin.Open finds no plugin module data and the host dies with "
            "\"fatal error: runtime: no plugin module data\"",
            "build it with `go build -buildmode=plugin`",
        ))
        return problems
    if problems:
        return problems
    if plugin.go_version != host.go_version:
        return [Problem(
            "go-toolchain",
            f"the plugin was built by {plugin.go_version}, the host by {host.go_version}: "
            "Go opens plugins from the exact same toolchain only, and what another release "
            f"does depends on the pair. {release_skew(plugin.go_version, host.go_version)}",
            f"rebuild the plugin with the host's toolchain, {host.go_version}, and the "
            "host's build flags",
        )]
    package = _first_difference(plugin, host)
    if package is not None:
        return [Problem(
            "go-package",
            f"package {package} was compiled differently for the plugin and the host "
            f"(fingerprint {plugin.fingerprints[package]} against "
            f"{host.fingerprints[package]}; {_cause(plugin, host)}): plugin.Open will say "
            f"\"plugin was built with a different version of package {package}\"",
            f"build host and plugin from the same source of {package}, with the same "
            "toolchain, tags and flags, in one pinned environment",
        )]
    return []


def go_note(plugin: GoInfo) -> str:
    """What to know about a Go plugin that no check can catch: one per path, forever."""
    return (f"Go plugin path {plugin.plugin_path!r}: a process opens it once (opening the "
            "same file again returns the same plugin, a copy under another name fails with "
            "\"plugin already loaded\") and never unloads it")


def _host_problems(host: GoInfo, host_elf: ElfInfo | None) -> list[Problem]:
    if host.buildmode not in ("exe", "pie"):
        return [Problem(
            "go-host-not-program",
            f"the host {show(host.path)} was built with -buildmode={host.buildmode}: only a "
            "Go program opens plugins with plugin.Open",
            "point --host at the Go program that will open the plugin",
        )]
    if not host.cgo:
        return [Problem(
            "go-no-cgo",
            f"the host {show(host.path)} was built with CGO_ENABLED=0, so its plugin "
            "package is the stub that answers \"plugin: not implemented\"",
            "rebuild the host with CGO_ENABLED=1 (cgo needs a C compiler in the build "
            "image); plugins need cgo on both sides",
        )]
    if host_elf is not None and host_elf.interpreter is None:
        return [Problem(
            "go-static-host",
            f"the host {show(host.path)} is linked statically: with no dynamic loader in the "
            "process, plugin.Open answers \"Dynamic loading not supported\"",
            "link the host dynamically (drop -extldflags=-static, or musl's static default "
            "with -ldflags=-extldflags=-dynamic)",
        )]
    if not host.fingerprints and not host.stripped:
        return [Problem(
            "go-no-plugin-package",
            f"the host {show(host.path)} does not import package plugin, so it cannot open "
            "plugins at all",
            "import \"plugin\" in the host and call plugin.Open",
        )]
    return []


def _first_difference(plugin: GoInfo, host: GoInfo) -> str | None:
    for package, fingerprint in plugin.fingerprints.items():
        theirs = host.fingerprints.get(package)
        if theirs is not None and theirs != fingerprint:
            return package
    return None


def _cause(plugin: GoInfo, host: GoInfo) -> str:
    """The build settings that differ, in words, or the source when none does."""
    differences = []
    for key in COMPILE_SETTINGS:
        mine, theirs = plugin.settings.get(key), host.settings.get(key)
        if (mine or "") != (theirs or ""):  # -trimpath leaves out empty CGO_* settings
            differences.append(f"plugin {_setting(key, mine)}, host {_setting(key, theirs)}")
    if differences:
        return "; ".join(differences)
    return "same toolchain and flags, so the package's source itself changed"


def _setting(key: str, value: str | None) -> str:
    if value is None:
        return f"without {key}"
    if value == "true" and key.startswith("-"):
        return f"with {key}"
    return f"{key}={value}"


def release_skew(plugin: str, host: str) -> str:
    """What a plugin from Go release ``plugin`` most likely does in a host from ``host``.

    The plugin's ``.init_array`` hands its module data to the host's runtime, which reads it
    with the layout of its own release (``moduledata`` in runtime/symtab.go). Two releases of
    one Go version (go1.27.0, go1.27.3) lay it out alike, so the fingerprints are compared and
    differ; two Go versions usually do not (go1.27 added and removed fields), and the host's
    runtime, finding no module it can read, throws."""
    if _minor(plugin) == _minor(host):
        return ("Two releases of one Go version lay out the runtime's module data alike, so "
                "plugin.Open most likely refuses it with \"plugin was built with a different "
                "version of package ...\"")
    return ("The host's runtime reads the plugin's module data with its own release's layout, "
            "which changes between Go versions (it did from go1.26 to go1.27), so the host most "
            "likely dies with \"fatal error: runtime: no plugin module data\"; with an unchanged "
            "layout it would refuse with \"plugin was built with a different version of package "
            "...\"")


def _minor(version: str) -> str:
    """``go1.27.3`` -> ``go1.27``."""
    return ".".join(version.split(".")[:2])
