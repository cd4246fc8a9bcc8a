"""Regenerate the vendored schemas in this folder from the PyPI packages that ship them.

    .venv/bin/python tests/deploy/schemas/update.py

Only this script touches the network (pip download); the tests read the vendored files. Sources:

- `compose-spec.json`: the official Compose Specification schema, as vendored by check-jsonschema.
- `kubernetes-strict.json`: the strict (additionalProperties: false) JSON schemas that
  kubernetes-validate generates from the Kubernetes OpenAPI spec, cut down to the kinds that
  deploy/k8s uses and the definitions they reach, with descriptions dropped (1.3 MB -> ~100 KB).

KEDA's CustomResourceDefinitions ship in no PyPI package: `keda.py` beside this file holds a
focused schema for the ScaledObject and TriggerAuthentication fields that matter here.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECK_JSONSCHEMA = "check-jsonschema==0.39.0"
KUBERNETES_VALIDATE = "kubernetes-validate==1.37.0"
KUBERNETES_VERSION = "1.32.0"
# (apiVersion, kind) -> file name in kubernetes-validate's schema folder.
KINDS = {
    ("v1", "Namespace"): "namespace-v1.json",
    ("v1", "ConfigMap"): "configmap-v1.json",
    ("v1", "Secret"): "secret-v1.json",
    ("v1", "Service"): "service-v1.json",
    ("apps/v1", "Deployment"): "deployment-apps-v1.json",
    ("apps/v1", "StatefulSet"): "statefulset-apps-v1.json",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudget-policy-v1.json",
    ("networking.k8s.io/v1", "Ingress"): "ingress-networking-v1.json",
}
DEFS_PREFIX = "/api/_definitions.json#/$defs/"


def download(requirement: str, dest: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-d",
            str(dest),
            requirement,
        ],
        check=True,
    )
    name = requirement.split("==")[0].replace("-", "_")
    return next(dest.glob(f"{name}-*.whl"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def strip_descriptions(node: object, in_properties: bool = False) -> object:
    """Drop `description` annotations, but keep properties that happen to be named `description`."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "description" and not in_properties and isinstance(value, str):
                continue
            out[key] = strip_descriptions(
                value, in_properties=(key in ("properties", "$defs") and not in_properties)
            )
        return out
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def rewrite_refs(node: object, found: set[str]) -> object:
    """`/api/_definitions.json#/$defs/X` and `#/$defs/X` -> `#/$defs/X`, collecting every X."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = value.split("#/$defs/", 1)[1]
                found.add(name)
                out[key] = f"#/$defs/{name}"
            else:
                out[key] = rewrite_refs(value, found)
        return out
    if isinstance(node, list):
        return [rewrite_refs(v, found) for v in node]
    return node


def kubernetes(wheel: Path) -> dict:
    folder = f"kubernetes_validate/kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict/"
    with zipfile.ZipFile(wheel) as zf:
        all_defs = json.loads(zf.read(folder + "_definitions.json"))["$defs"]
        kinds = {f"{api}/{kind}": json.loads(zf.read(folder + name)) for (api, kind), name in KINDS.items()}
    defs: dict[str, object] = {}
    todo: set[str] = set()
    kind_schemas = {key: rewrite_refs(schema, todo) for key, schema in kinds.items()}
    while todo:
        name = todo.pop()
        if name in defs:
            continue
        reached: set[str] = set()
        defs[name] = rewrite_refs(all_defs[name], reached)
        todo |= reached - defs.keys()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"Kubernetes v{KUBERNETES_VERSION} strict schemas from {KUBERNETES_VALIDATE}, cut down by update.py",
        "kinds": strip_descriptions(kind_schemas, in_properties=True),
        "$defs": strip_descriptions(dict(sorted(defs.items())), in_properties=True),
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        cj = download(CHECK_JSONSCHEMA, tmpdir)
        kv = download(KUBERNETES_VALIDATE, tmpdir)
        with zipfile.ZipFile(cj) as zf:
            vendor = "check_jsonschema/builtin_schemas/vendor/"
            (HERE / "compose-spec.json").write_bytes(zf.read(vendor + "compose-spec.json"))
            (HERE / "LICENSE.compose-spec").write_bytes(zf.read(vendor + "licenses/LICENSE.compose-spec"))
        (HERE / "kubernetes-strict.json").write_text(
            json.dumps(kubernetes(kv), indent=1, sort_keys=False) + "\n"
        )
        with zipfile.ZipFile(kv) as zf:
            lic = next(n for n in zf.namelist() if n.endswith("licenses/LICENSE") or n.endswith("/LICENSE"))
            (HERE / "LICENSE.kubernetes-validate").write_bytes(zf.read(lic))
        sources = [
            "# Vendored schemas (generated by update.py; do not edit by hand)",
            "",
            "| file | from | wheel sha256 |",
            "| --- | --- | --- |",
            f"| compose-spec.json | `{CHECK_JSONSCHEMA}`: check_jsonschema/builtin_schemas/vendor/compose-spec.json | `{sha256(cj)}` |",
            f"| kubernetes-strict.json | `{KUBERNETES_VALIDATE}`: kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict, "
            f"kinds {', '.join(f'{a}/{k}' for a, k in KINDS)} and the definitions they reach, descriptions dropped | `{sha256(kv)}` |",
            "",
            "KEDA (keda.sh/v1alpha1 ScaledObject, TriggerAuthentication) ships in no PyPI package: its focused",
            "schema is written by hand in keda.py, after KEDA's CRDs (config/crd/bases in kedacore/keda).",
            "",
        ]
        (HERE / "SOURCES.md").write_text("\n".join(sources))
    for p in sorted(HERE.iterdir()):
        if p.is_file():
            print(f"{p.stat().st_size:>9}  {p.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
