"""labkit.inspect.elf against GNU readelf and nm on the same files, and on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import labkit
from labkit.inspect import binutils
from labkit.inspect.dynamic import load_relocations, read_dynamic
from labkit.toolchain import find_zig

from .conftest import HELLO_C

LIBM = Path("/usr/lib/x86_64-linux-gnu/libm.so.6")

# A library with a version script: defined symbols carry versions (name@@V2, name@V1)
VERSIONED_C = """
int old_api(void) { return 1; }
int new_api(void) { return 2; }
__asm__(".symver old_api, api@V1");
__asm__(".symver new_api, api@@V2");
static int hidden_helper(void) { return 3; }
__attribute__((visibility("hidden"))) int internal(void) { return hidden_helper(); }
__attribute__((visibility("protected"))) int guarded(void) { return 4; }
"""


@pytest.fixture
def elf_files(workdir: Path, hello_so: labkit.Artifact, aarch64_so: Path, musl_so: Path) -> dict[str, Path]:
    script = workdir / "vers.map"
    script.write_text("V1 { global: api; local: *; };\nV2 { global: api; guarded; } V1;\n")
    versioned = labkit.build_shared(
        VERSIONED_C, "versioned", ldflags=[f"-Wl,--version-script={script}", "-Wl,-soname,libversioned.so.2"]
    )
    dep = labkit.build_shared("int dep(void) { return 1; }\n", "dep")
    user = labkit.build_shared(
        "int dep(void);\nint use(void) { return dep(); }\n", "user",
        libs=[dep.path], ldflags=["-Wl,-rpath,$ORIGIN/lib", "-Wl,--enable-new-dtags"],
    )
    exe = labkit.build_executable('#include <stdio.h>\nint main(void){return puts("x");}\n', "prog")
    files = {"hello": hello_so.path, "versioned": versioned.path, "user": user.path,
             "exe": exe.path, "aarch64": aarch64_so, "musl": musl_so}
    if LIBM.exists():
        files["libm"] = LIBM
    return files


ALL = ["hello", "versioned", "user", "exe", "aarch64", "musl", "libm"]


@pytest.mark.parametrize("which", ALL)
def test_dynamic_symbols_match_readelf(elf_files: dict[str, Path], which: str) -> None:
    if which not in elf_files:
        pytest.skip(f"{LIBM} is not on this machine")
    path = elf_files[which]
    ours = sorted((s.name, s.type, s.binding, s.visibility, s.defined, s.version)
                  for s in labkit.read_elf(path).symbols)
    theirs = sorted((s.name, s.type, s.binding, s.visibility, s.defined, s.version)
                    for s in binutils.readelf_dynamic_symbols(path))
    assert ours and ours == theirs


@pytest.mark.parametrize("which", ALL)
def test_dynamic_section_and_header_match_readelf(elf_files: dict[str, Path], which: str) -> None:
    if which not in elf_files:
        pytest.skip(f"{LIBM} is not on this machine")
    path = elf_files[which]
    info = labkit.read_elf(path)
    dyn = binutils.readelf_dynamic(path)
    assert list(info.needed) == dyn["NEEDED"]
    assert ([info.soname] if info.soname else []) == dyn["SONAME"]
    assert list(info.runpath) == dyn["RUNPATH"] and list(info.rpath) == dyn["RPATH"]
    header = binutils.readelf_header(path)
    assert header["Class"] == f"ELF{info.elf_class}"
    readelf_type = {"shared object": "DYN (Shared object file)",
                    "pie executable": "DYN (Position-Independent Executable file)",
                    "executable": "EXEC (Executable file)"}[info.type]
    assert header["Type"] == readelf_type
    assert info.interpreter == binutils.readelf_interpreter(path)


def test_what_the_files_are(elf_files: dict[str, Path]) -> None:
    read = {k: labkit.read_elf(p) for k, p in elf_files.items()}
    assert read["aarch64"].machine == "aarch64" and read["hello"].machine == "x86_64"
    assert read["musl"].needed == ("libc.so",)
    assert read["exe"].type == "pie executable" and read["exe"].interpreter
    assert read["user"].runpath == ("$ORIGIN/lib",) and read["user"].needed[0] == "libdep.so"
    v = read["versioned"]
    assert v.soname == "libversioned.so.2" and v.version_defs == ("V1", "V2")
    api = sorted(s.versioned_name for s in v.symbols if s.name == "api")
    assert api == ["api@@V2", "api@V1"]
    assert "internal" not in v.exported and "guarded" in v.exported
    puts = read["hello"].symbol("printf")
    assert puts is not None and not puts.defined and puts.version and puts.version.startswith("GLIBC_")
    assert any(n.library == "libc.so.6" for n in read["hello"].version_needs)


def test_exported_names_match_nm(hello_so: labkit.Artifact) -> None:
    ours = set(labkit.read_elf(hello_so.path).exported)
    theirs = {name.split("@")[0] for kind, name in binutils.nm_dynamic(hello_so.path, defined_only=True)}
    assert ours == theirs and {"add", "greet", "counter"} <= ours


def test_visibility_hidden_removes_symbols(workdir: Path) -> None:
    src = HELLO_C.replace("int add(", '__attribute__((visibility("default"))) int add(')
    hidden = labkit.build_shared(src, "hid", cflags=["-fvisibility=hidden"])
    assert set(labkit.read_elf(hidden.path).exported) == {"add"}


def test_frames_for_notebooks(hello_so: labkit.Artifact) -> None:
    info = labkit.read_elf(hello_so.path)
    frame = info.symbols_frame(["greet", "add", "printf"])
    assert list(frame["name"]) == ["greet", "add", "printf"]
    assert list(frame["defined"]) == ["yes", "yes", "no (UND)"]
    assert ".dynsym" in set(info.sections_frame()["section"])
    assert info.summary().startswith("build/libhello.so: ELF64 little-endian shared object for x86_64")


@pytest.mark.parametrize(
    ("which", "error", "message"),
    [
        pytest.param("text", labkit.ElfError, r"'bad/notes\.so' is not an ELF file: it begins with b'this is .*a text file(?s:.*)Fix:", id="text"),
        pytest.param("empty", labkit.ElfError, r"'bad/empty\.so' is empty \(0 bytes\)(?s:.*)Fix:", id="empty"),
        pytest.param("truncated", labkit.ElfError, r"'bad/truncated\.so' is truncated: .* ends at byte \d+, but the file has only 600 bytes(?s:.*)SIGBUS(?s:.*)Fix: rebuild", id="truncated"),
        pytest.param("tiny", labkit.ElfError, r"'bad/tiny\.so' is truncated: 6 bytes", id="tiny"),
        pytest.param("directory", labkit.InputError, r"'bad/folder\.so' is a directory", id="directory"),
        pytest.param("missing", labkit.InputError, r"'bad/missing\.so' does not exist", id="missing"),
    ],
)
def test_bad_input(bad: dict[str, Path], which: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        labkit.read_elf(bad[which])


def test_wasm_is_named_as_such(workdir: Path) -> None:
    wasm = labkit.build_shared("int f(void){return 1;}\n", "w", target="wasm32-freestanding")
    with pytest.raises(labkit.ElfError, match="a WebAssembly module") as info:
        labkit.peek(wasm.path)
    assert info.value.reason == "not-elf"


def test_read_soname_agrees_with_read_elf(elf_files: dict[str, Path]) -> None:
    for path in elf_files.values():
        assert labkit.read_soname(path) == labkit.read_elf(path).soname
    assert labkit.read_soname(elf_files["versioned"]) == "libversioned.so.2"


def test_read_soname_refuses_bad_files(bad: dict[str, Path]) -> None:
    with pytest.raises(labkit.ElfError, match="is truncated"):
        labkit.read_soname(bad["truncated"])
    with pytest.raises(labkit.ElfError, match="not an ELF file"):
        labkit.read_soname(bad["text"])


def _readelf(*args: str | Path) -> str:
    return subprocess.run(["readelf", "-W", *map(str, args)], capture_output=True, text=True,
                          check=True).stdout


def test_tls_segment_flags_and_tls_relocations_match_readelf(workdir: Path) -> None:
    """What the loader's model reads (labkit.dynamic and the new ElfInfo fields) against
    readelf: the PT_TLS segment, DT_FLAGS and DT_FLAGS_1, the TLS relocations."""
    source = ('__thread char block[100] __attribute__((tls_model("initial-exec")));\n'
              "int touch(void) { return ++block[99]; }\n")
    lib = labkit.build_shared(source, "ietls", ldflags=["-Wl,-z,nodlopen"])
    info = labkit.read_elf(lib.path)
    dyn = read_dynamic(lib.path)
    tls_line = next(line.split() for line in _readelf("-l", lib.path).splitlines()
                    if line.strip().startswith("TLS "))
    assert info.tls == dyn.tls and info.tls is not None
    assert (info.tls.size, info.tls.align) == (int(tls_line[5], 16), int(tls_line[7], 16))
    flags = _readelf("-d", lib.path)
    assert info.static_tls and dyn.static_tls and "STATIC_TLS" in flags
    assert info.no_dlopen and "NOOPEN" in flags and not info.pie
    relocations = [line.split()[2] for line in _readelf("-r", lib.path).splitlines()
                   if "TPOFF" in line or "TLSDESC" in line]
    assert relocations == ["R_X86_64_TPOFF64"]
    assert [(r.kind, r.symbol) for r in load_relocations(lib.path) if r.kind != "symbol"] == \
        [("tpoff", "block")]
    exe = labkit.build_executable("int main(void) { return 0; }\n", "piecheck")
    assert labkit.read_elf(exe.path).pie and "PIE" in _readelf("-d", exe.path)
    libc = next(p for p in (Path("/lib/x86_64-linux-gnu/libc.so.6"), Path("/usr/lib64/libc.so.6")) if p.exists())
    assert labkit.read_elf(libc).type == "shared object"  # it has an interpreter, and no DF_1_PIE


def _symbols_by_pyelftools(path: Path) -> list[tuple[object, ...]]:
    """Each dynamic symbol as pyelftools reads it, field by field (the slow way read_elf
    no longer takes), with the version index the versym section gives it."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerSymSection

    found = []
    with open(path, "rb") as f:
        elf = ELFFile(f)
        versym = next((s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection)), None)
        for table in elf.iter_sections(type="SHT_DYNSYM"):
            for index, sym in enumerate(table.iter_symbols()):
                if index == 0:
                    continue
                ndx = versym.get_symbol(index)["ndx"] if versym is not None else None
                found.append((sym.name, str(sym["st_info"]["type"]), str(sym["st_info"]["bind"]),
                              str(sym["st_other"]["visibility"]), sym["st_shndx"] != "SHN_UNDEF",
                              sym["st_size"], ndx if isinstance(ndx, int) else None))
    return found


def _interesting_files() -> list[Path]:
    """libc, this Python, a C++ library, and the lab's own builds: C, a Go program."""
    import ctypes.util

    files = [Path(sys.executable).resolve()]
    for name in ("c", "stdc++", "m"):
        found = ctypes.util.find_library(name)
        if found:
            for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64"):
                if (Path(folder) / found).exists():
                    files.append((Path(folder) / found).resolve())
                    break
    return files


def test_read_elf_gives_each_symbol_as_pyelftools_reads_it(workdir: Path) -> None:
    files = _interesting_files()
    files.append(labkit.build_shared(labkit.PLUGINS_C / "upper.c").path)
    files.append(labkit.build_shared(labkit.PLUGINS_C / "upper.c", target="aarch64-linux-gnu",
                                     out_dir="build/arm").path)
    files.append(labkit.build_go("host", "host", out_dir="build/go").path)  # thousands of them
    # a 32-bit file (Elf32_Sym): zig cc for i386 with glibc, so its symbols have versions too
    (workdir / "t32.c").write_text("int g = 3;\nint f(int x) { return x + g; }\n")
    subprocess.run([*find_zig().command, "cc", "-target", "x86-linux-gnu", "-shared", "-fPIC",
                    "-o", "t32.so", "t32.c"], cwd=workdir, check=True, timeout=300)
    files.append(workdir / "t32.so")
    assert labkit.read_elf(workdir / "t32.so").elf_class == 32
    for path in files:
        ours = labkit.read_elf(path).symbols
        theirs = _symbols_by_pyelftools(path)
        assert len(ours) == len(theirs), path
        for sym, (name, kind, bind, vis, defined, size, ndx) in zip(ours, theirs, strict=True):
            assert (sym.name, sym.defined, sym.size) == (name, defined, size), (path, name)
            # pyelftools names binding 10 STB_LOOS; for GNU it is STB_GNU_UNIQUE
            assert sym.binding == {"STB_LOOS": "GNU_UNIQUE"}.get(bind, bind.removeprefix("STB_"))
            assert sym.visibility == vis.removeprefix("STV_"), (path, name)
            assert sym.type == {"STT_LOOS": "IFUNC"}.get(kind, kind.removeprefix("STT_"))
            assert sym.hidden == bool(ndx and ndx & 0x8000), (path, name)
            assert (sym.version is None) or ndx is not None, (path, name)


def test_a_file_is_read_once_while_it_is_the_same_file(tmp_path: Path) -> None:
    """FileMemo (read_elf, go_info, the loader model's tables): one read per file; an edited
    file, or another file renamed over it, is read again."""
    import os

    from labkit.inspect.elf import FileMemo

    memo: FileMemo[bytes] = FileMemo(limit=2)
    reads: list[Path] = []

    def read(path: Path) -> bytes:
        reads.append(path)
        return path.read_bytes()

    one = tmp_path / "one"
    one.write_bytes(b"first")
    assert memo(one, read) == memo(tmp_path / "." / "one", read) == b"first"
    assert len(reads) == 1
    one.write_bytes(b"second, longer")  # edited in place: another size
    assert memo(one, read) == b"second, longer" and len(reads) == 2
    other = tmp_path / "other"
    other.write_bytes(b"second, LONGER")
    os.utime(other, ns=(one.stat().st_atime_ns, one.stat().st_mtime_ns))
    os.replace(other, one)  # same size and time, another inode
    assert memo(one, read) == b"second, LONGER" and len(reads) == 3
    for name in ("a", "b", "c"):  # beyond the limit, the oldest goes
        (tmp_path / name).write_bytes(name.encode())
        memo(tmp_path / name, read)
    memo(one, read)
    assert len(reads) == 7


def test_read_elf_gives_the_path_as_asked_from_its_memo(hello_so: labkit.Artifact,
                                                       tmp_path: Path) -> None:
    link = tmp_path / "link.so"
    link.symlink_to(hello_so.path.resolve())
    assert labkit.read_elf(hello_so.path).path == hello_so.path
    assert labkit.read_elf(link).path == link
    assert labkit.read_elf(link).symbols == labkit.read_elf(hello_so.path).symbols
