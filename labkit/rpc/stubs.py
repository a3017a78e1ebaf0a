"""The protobuf message classes of ``plugins/proto/*.proto``, generated in the build.

protoc's Python output says "NO CHECKED-IN PROTOBUF GENCODE": it belongs to the protobuf
release that generated it. So labkit runs grpcio-tools' protoc on first use, caches the
``*_pb2.py`` files by the content of the ``.proto`` files and the protobuf and grpcio-tools
versions, and imports them from there. Only message classes are generated; labkit wires
the gRPC methods itself (:mod:`labkit.rpc.server`, :mod:`labkit.rpc.client`), so there are
no ``*_pb2_grpc.py`` modules with their top-level imports.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType

from ..build import cache
from ..errors import BuildError, ToolchainError
from ..paths import LAB_ROOT, PLUGINS_GO, PLUGINS_PROTO, tidy

#: The lab's protocol definitions: the app protocol and go-plugin's own services.
PROTO_DIR = PLUGINS_PROTO
PROTOS = ("transformer.proto", "goplugin.proto")

_loaded: dict[str, ModuleType] = {}
_lock = threading.Lock()


def messages(name: str) -> ModuleType:
    """The generated module for ``plugins/proto/NAME.proto`` (``"transformer"``,
    ``"goplugin"``), generating it on first use."""
    with _lock:
        if name not in _loaded:
            folder = generate()
            module_name = f"labkit.rpc._pb.{name}_pb2"
            spec = importlib.util.spec_from_file_location(module_name, folder / f"{name}_pb2.py")
            if spec is None or spec.loader is None:  # pragma: no cover - a file we just wrote
                raise ToolchainError("protoc", f"cannot import {name}_pb2.py", fix="make clean")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            _loaded[name] = module
        return _loaded[name]


def generate(out_dir: Path | None = None) -> Path:
    """Run protoc on :data:`PROTOS` into ``out_dir`` (default: the cache) and return the
    folder. A cache hit costs a hash of two small files."""
    sources = [PROTO_DIR / name for name in PROTOS]
    versions = {dist: importlib.metadata.version(dist) for dist in ("protobuf", "grpcio-tools")}
    build_key = cache.key({s.name: cache.file_digest(s) for s in sources}, versions)
    folder = out_dir or cache.entry("proto", build_key)
    expected = folder / f"{Path(PROTOS[-1]).stem}_pb2.py"
    if expected.exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".proto-", dir=folder.parent))
    command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}",
               f"-I{_well_known_protos()}", f"--python_out={staged}",
               *(str(s) for s in sources)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise BuildError(
            f"protoc refused {', '.join(PROTOS)}:\n{tidy(done.stderr.strip())}",
            fix="correct the .proto file named above (plugins/proto/).",
            source=str(PROTO_DIR), command=command, returncode=done.returncode,
            stderr=done.stderr,
        )
    cache.publish(staged, folder, expected)
    return folder


def _well_known_protos() -> Path:
    import grpc_tools

    return Path(grpc_tools.__file__).parent / "_proto"


def generate_go(out_dir: Path) -> list[Path]:
    """Generate the Go code of ``transformer.proto`` into ``out_dir`` with protoc-gen-go and
    protoc-gen-go-grpc at the versions ``plugins/go/goplugin/go.mod`` pins as tools (built
    from the Go module proxy). The committed copy lives in ``plugins/go/goplugin/proto``;
    ``make protos`` refreshes it, and a test checks that it is current."""
    from ..toolchain import find_go

    module = PLUGINS_GO / "goplugin"
    go = find_go()
    with tempfile.TemporaryDirectory() as tools:
        env = {**os.environ, "GOTOOLCHAIN": "local", "GOWORK": "off", "GOFLAGS": "-buildvcs=false"}
        built = subprocess.run(
            [*go.command, "build", "-o", tools, "google.golang.org/protobuf/cmd/protoc-gen-go",
             "google.golang.org/grpc/cmd/protoc-gen-go-grpc"],
            cwd=module, env=env, capture_output=True, text=True, timeout=600)
        if built.returncode != 0:
            raise BuildError(
                f"go could not build the protoc plugins pinned in go.mod:\n{tidy(built.stderr)}",
                fix="the Go module proxy must be reachable the first time",
                source=str(module), command=built.args, returncode=built.returncode,
                stderr=built.stderr)
        out_dir.mkdir(parents=True, exist_ok=True)
        env["PATH"] = os.pathsep.join([tools, env.get("PATH", "")])
        command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}",
                   f"--go_out={out_dir}", "--go_opt=paths=source_relative",
                   f"--go-grpc_out={out_dir}", "--go-grpc_opt=paths=source_relative",
                   str(PROTO_DIR / "transformer.proto")]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise BuildError(f"protoc could not generate Go code:\n{tidy(done.stderr)}",
                             fix="correct transformer.proto at the line protoc names above",
                             source=str(PROTO_DIR), command=command,
                             returncode=done.returncode, stderr=done.stderr)
    return sorted(out_dir.glob("*.go"))


def fetch_go_modules() -> None:
    """``go mod download`` in ``plugins/go/goplugin``: every module its go.mod lists, the
    protoc plugins that :func:`generate_go` builds among them, so that it runs offline."""
    from ..build.go import download_modules

    download_modules(PLUGINS_GO / "goplugin")


def main() -> None:
    """``make protos``: refresh the committed Go code of the protocol."""
    for path in generate_go(PLUGINS_GO / "goplugin" / "proto"):
        print(f"wrote {path.relative_to(LAB_ROOT)}")
