"""Generate the Python code of `proto/waterflow/v1/*.proto` (run it through `nox -s proto`).

The code goes to the core package's own subpackage `waterflow._proto` (message classes, gRPC
stubs and typed `.pyi` stubs), each file headed with a DO-NOT-EDIT line. protoc writes imports
for the proto package (`from waterflow.v1 import ...`); they are pointed at `waterflow._proto.v1`.
The output depends on the versions of grpcio-tools and mypy-protobuf, which the root
pyproject.toml pins; `tests/test_proto.py` regenerates into a temporary directory and fails when
the committed files differ.

    python proto/generate.py            # regenerate in place
    python proto/generate.py --out DIR  # write the `_proto` tree under DIR instead
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE = "waterflow/v1"
TARGET = ROOT / "packages" / "waterflow-agent-core" / "src" / "waterflow" / "_proto"
HEADER = "# DO NOT EDIT: generated from proto/{source} by `nox -s proto`.\n"
INIT_DOC = (
    '"""Generated protobuf and gRPC code of proto/{source}; regenerate with `nox -s proto`."""\n'
)

_IMPORT = re.compile(r"^from waterflow\.v1 import ", re.MULTILINE)
_MODULE_NAME = re.compile(r"(BuildTopDescriptorsAndMessages\(DESCRIPTOR, )'waterflow\.v1\.")


class GenerateError(Exception):
    """protoc failed; its message says why."""


def sources() -> list[Path]:
    return sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))


def _protoc(out: Path) -> None:
    import grpc_tools

    bin_dir = Path(sys.executable).parent
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    argv = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(p.relative_to(PROTO_ROOT)) for p in sources()),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GenerateError(f"protoc failed: {done.stderr.strip() or done.stdout.strip()}")


def _has_service(proto: Path) -> bool:
    return re.search(r"^service\s", proto.read_text(encoding="utf-8"), re.MULTILINE) is not None


def generate(target: Path = TARGET) -> list[Path]:
    """Write the generated tree to `target` (replacing it) and return the files written."""
    with tempfile.TemporaryDirectory(prefix="waterflow-proto-") as tmp:
        raw = Path(tmp)
        _protoc(raw)
        if target.exists():
            shutil.rmtree(target)
        (target / "v1").mkdir(parents=True)
        written = []
        init = target / "__init__.py"
        init.write_text(INIT_DOC.format(source=f"{PACKAGE}/*.proto"), encoding="utf-8")
        v1_init = target / "v1" / "__init__.py"
        v1_init.write_text(INIT_DOC.format(source=f"{PACKAGE}/*.proto"), encoding="utf-8")
        written += [init, v1_init]
        for proto in sources():
            stem = proto.stem
            names = [f"{stem}_pb2.py", f"{stem}_pb2.pyi"]
            if _has_service(proto):
                names += [f"{stem}_pb2_grpc.py", f"{stem}_pb2_grpc.pyi"]
            for name in names:
                text = (raw / PACKAGE / name).read_text(encoding="utf-8")
                text = _IMPORT.sub("from waterflow._proto.v1 import ", text)
                text = _MODULE_NAME.sub(r"\1'waterflow._proto.v1.", text)
                path = target / "v1" / name
                path.write_text(HEADER.format(source=f"{PACKAGE}/{proto.name}") + text, "utf-8")
                written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the `_proto` tree under this directory")
    args = parser.parse_args()
    target = args.out / "_proto" if args.out else TARGET
    try:
        files = generate(target)
    except GenerateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(files)} files to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
