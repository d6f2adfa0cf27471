"""Build the project wheel from exactly what the Dockerfile's build stage copies.

No Docker engine runs here, so this is the closest offline check of the image's
install step: it reads the `COPY` instructions of the build stage, drops what
`.dockerignore` excludes, and runs `pip wheel` on the result. It fails when the
Dockerfile forgets a source folder, `.dockerignore` hides one, or the wheel lacks
the `switchyard` console script or a tier's package.

Usage: python deploy/tools/check_docker_context.py [REPO_ROOT]
"""

from __future__ import annotations

import fnmatch
import glob
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REQUIRED_PACKAGES = (
    "switchyard_common",
    "switchyard_cli",
    "switchyard_controlplane",
    "switchyard_dataplane",
    "switchyard_ingest",
)


class ContextError(Exception):
    """The Docker build context would not produce a working image."""


def build_stage_copies(dockerfile: Path) -> list[str]:
    """Source paths of `COPY` lines in stages that copy from the context (not --from)."""
    sources: list[str] = []
    for raw in _logical_lines(dockerfile.read_text()):
        parts = shlex.split(raw)
        if not parts or parts[0].upper() != "COPY":
            continue
        args = [p for p in parts[1:] if not p.startswith("--")]
        if any(p.startswith("--from") for p in parts[1:]):
            continue
        sources.extend(args[:-1])
    if not sources:
        raise ContextError(f"{dockerfile}: no COPY from the build context")
    return sources


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not current:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def ignore_patterns(dockerignore: Path) -> list[str]:
    if not dockerignore.exists():
        return []
    patterns = []
    for line in dockerignore.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line.rstrip("/"))
    return patterns


def is_ignored(rel: str, patterns: list[str]) -> bool:
    """.dockerignore semantics of Docker's pattern matcher: a pattern matches a path or
    any of its parent folders, and the LAST matching pattern decides, so a later
    `!pattern` re-includes what an earlier one excluded."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        exception = raw.startswith("!")
        pattern = raw.removeprefix("!").rstrip("/")
        bare = pattern.removeprefix("**/")
        matches = any(fnmatch.fnmatch(p, pattern) for p in prefixes)
        if pattern.startswith("**/") and any(fnmatch.fnmatch(part, bare) for part in parts):
            matches = True
        if matches:
            ignored = not exception
    return ignored


def assemble_context(root: Path, dest: Path) -> list[str]:
    patterns = ignore_patterns(root / ".dockerignore")
    copied: list[str] = []
    for source in build_stage_copies(root / "Dockerfile"):
        matches = sorted(glob.glob(source, root_dir=root))
        if not matches and not glob.has_magic(source):
            raise ContextError(f"COPY source {source!r} does not exist")
        for match in matches:
            if is_ignored(match, patterns):
                raise ContextError(f"COPY source {match!r} is excluded by .dockerignore")
            src = root / match
            for path in [src] if src.is_file() else sorted(src.rglob("*")):
                rel = path.relative_to(root).as_posix()
                if path.is_dir() or is_ignored(rel, patterns):
                    continue
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
            copied.append(match)
    return copied


def check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
        scripts = zf.read(entry_points).decode() if entry_points else ""
    if "switchyard = " not in scripts:
        raise ContextError("wheel has no `switchyard` console script (ENTRYPOINT would fail)")
    missing = [pkg for pkg in REQUIRED_PACKAGES if not any(n.startswith(f"{pkg}/") for n in names)]
    if missing:
        raise ContextError(f"wheel lacks packages: {', '.join(missing)}")


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else ".").resolve()
    try:
        with tempfile.TemporaryDirectory(prefix="switchyard-docker-ctx-") as tmp:
            context = Path(tmp) / "context"
            copied = assemble_context(root, context)
            out = Path(tmp) / "wheels"
            # --no-build-isolation: use the venv's setuptools instead of downloading one.
            cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
            result = subprocess.run(
                [*cmd, "--wheel-dir", str(out), str(context)], capture_output=True, text=True
            )
            if result.returncode != 0:
                raise ContextError(f"pip wheel failed:\n{result.stdout}{result.stderr}")
            wheels = list(out.glob("switchyard-*.whl"))
            if len(wheels) != 1:
                raise ContextError(f"expected one switchyard wheel, got {wheels}")
            check_wheel(wheels[0])
    except ContextError as exc:
        print(f"docker context: FAIL: {exc}", file=sys.stderr)
        return 1
    print(f"docker context: ok (copied {', '.join(copied)}; wheel has the CLI and every tier)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
