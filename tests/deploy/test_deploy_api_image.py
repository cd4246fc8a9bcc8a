"""The API image has only what Dockerfile.api installs: importing every `api` module must work with
nothing else. A subprocess imports them behind an import hook that refuses every module that is
neither the standard library, this project, nor a distribution the image installs (the listed
requirements and everything they require, computed from the installed metadata)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata

from deploy_files import REPO, dockerfile, pip_install_requirements, requirement_args
from packaging.requirements import Requirement

API_DOCKERFILE = REPO / "deploy" / "Dockerfile.api"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_closure(requirements: list[Requirement]) -> set[str]:
    """Canonical names of the distributions pip installs for `requirements` (markers evaluated here)."""
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in requirements]
    while todo:
        req, extras = todo.pop()
        name = canonical(req.name)
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: not needed on this platform/python
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *extras)):
                todo.append((sub, frozenset(sub.extras)))
    return {k.split("[")[0] for k in seen}


def allowed_top_level_modules(dists: set[str]) -> set[str]:
    modules = set()
    for module, owners in metadata.packages_distributions().items():
        if any(canonical(o) in dists for o in owners):
            modules.add(module)
    return modules


PROBE = r"""
import importlib, importlib.abc, json, pkgutil, sys, traceback
allowed = set(json.loads(sys.argv[1])) | set(sys.stdlib_module_names) | {"api", "worker", "rife_core"}
project = json.loads(sys.argv[2])
blocked_by_project, blocked_elsewhere = set(), set()

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in allowed or top in sys.modules:
            return None
        frame = sys._getframe(1)
        while frame and frame.f_code.co_filename.startswith("<frozen"):
            frame = frame.f_back
        importer = frame.f_code.co_filename if frame else ""
        (blocked_by_project if importer.startswith(tuple(project)) else blocked_elsewhere).add(top)
        raise ModuleNotFoundError(f"No module named {top!r} (not in the API image)", name=top)

sys.meta_path.insert(0, Refuse())
import api
failures = {}
names = ["api"] + [m.name for m in pkgutil.walk_packages(api.__path__, "api.") if not m.name.endswith("__main__")]
for name in names:
    try:
        importlib.import_module(name)
    except BaseException as e:
        failures[name] = f"{type(e).__name__}: {e}"
print(json.dumps({"modules": names, "blocked_by_project": sorted(blocked_by_project),
                  "blocked_elsewhere": sorted(blocked_elsewhere), "failures": failures,
                  "torch_loaded": "torch" in sys.modules}))
"""


def test_api_modules_import_with_only_the_api_image_dependencies():
    requirements = [
        Requirement(w)
        for call in pip_install_requirements(dockerfile(API_DOCKERFILE))
        for w in requirement_args(call)
        if w != "."
    ]
    allowed = allowed_top_level_modules(distribution_closure(requirements))
    assert {"litestar", "redis", "rq", "boto3", "httpx", "msgspec"} <= allowed
    assert not {"torch", "numpy", "av", "cv2", "scenedetect"} & allowed
    project = [str(REPO / p) for p in ("api", "worker", "rife_core")]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(sorted(allowed)), json.dumps(project)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report["torch_loaded"]
    assert report["blocked_by_project"] == [], (
        f"api imports modules the API image does not install: {report['blocked_by_project']} "
        f"(install them in deploy/Dockerfile.api or import them lazily); import failures: {report['failures']}"
    )
    missing = {m: e for m, e in report["failures"].items() if "(not in the API image)" in e}
    assert missing == {}, f"api modules that fail to import in the API image: {missing}"
