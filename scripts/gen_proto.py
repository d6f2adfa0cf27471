"""Regenerate the committed gRPC/protobuf modules from proto/.

Usage: python scripts/gen_proto.py [--check]
With --check, generate into a temporary folder and fail if the committed files differ.
"""

from __future__ import annotations

import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT = ROOT / "libs" / "common" / "switchyard_common" / "proto"
PROTOS = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *PROTOS,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    generated = sorted(p for p in out_dir.rglob("*_pb2*.py*"))
    # grpc_tools emits absolute imports ("from switchyard.v1 import ..."); make them
    # relative to the package the files live in.
    for path in generated:
        text = path.read_text()
        text = text.replace("from switchyard.v1 import", "from . import")
        path.write_text(text)
    return generated


def main() -> int:
    check = "--check" in sys.argv
    if not check:
        tmp = Path(tempfile.mkdtemp())
        for src in generate(tmp):
            dst = OUT / src.name
            dst.write_bytes(src.read_bytes())
            print(f"wrote {dst.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        stale = []
        for src in generate(Path(tmp)):
            dst = OUT / src.name
            if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
                stale.append(dst.relative_to(ROOT))
        if stale:
            print("generated code is stale, run `make proto`:", *stale, sep="\n  ")
            return 1
    print("generated code is current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
