"""Every YAML file under deploy/ parses and validates against its schema (vendored, no network).

- Compose files: the official Compose Specification schema (compose-spec.json, from check-jsonschema).
- Kubernetes objects: the strict Kubernetes v1.32 schemas (kubernetes-strict.json, from
  kubernetes-validate; unknown fields are errors, as with `kubectl apply --validate=strict`).
- KEDA objects: the focused schemas in schemas/keda.py (KEDA's CRDs are on no package index).
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
from deploy_files import (
    DEPLOY,
    K8S,
    SCHEMAS,
    compose,
    compose_files,
    k8s_files,
    k8s_objects,
    load_yaml_documents,
)


@functools.cache
def keda() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rife_deploy_keda_schema", SCHEMAS / "keda.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@functools.cache
def kubernetes_schemas() -> dict[str, Any]:
    return json.loads((SCHEMAS / "kubernetes-strict.json").read_text())


@functools.cache
def k8s_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    keda_schema = keda().SCHEMAS.get((api_version, kind))
    if keda_schema is not None:
        jsonschema.Draft202012Validator.check_schema(keda_schema)
        return jsonschema.Draft202012Validator(keda_schema)
    vendored = kubernetes_schemas()
    key = f"{api_version}/{kind}"
    if key not in vendored["kinds"]:
        pytest.fail(f"no schema for {key}: add it to KINDS in tests/deploy/schemas/update.py and rerun it")
    schema = {**vendored["kinds"][key], "$defs": vendored["$defs"]}
    return jsonschema.Draft202012Validator(schema)


def errors_of(validator: jsonschema.protocols.Validator, instance: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message[:300]}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    ]


def test_the_files_exist():
    names = {p.name for p in compose_files()}
    assert "docker-compose.yml" in names
    assert {p.name for p in k8s_files()} >= {
        "00-namespace.yaml",
        "10-config.yaml",
        "11-secrets.yaml",
        "20-redis.yaml",
        "30-api.yaml",
        "40-worker.yaml",
        "50-keda.yaml",
    }


def test_vendored_schemas_are_small_and_recorded():
    for name in ("compose-spec.json", "kubernetes-strict.json"):
        path = SCHEMAS / name
        assert path.stat().st_size < 512 * 1024, f"{name} should stay a small vendored file"
        assert name in (SCHEMAS / "SOURCES.md").read_text()


@pytest.mark.parametrize("path", compose_files(), ids=lambda p: p.name)
def test_compose_file_matches_the_compose_spec(path: Path):
    (doc,) = load_yaml_documents(path)
    assert errors_of(compose_validator(), doc) == []


def test_compose_validator_rejects_a_misspelt_field():
    """The schema is really applied: an unknown service attribute is an error."""
    bad = {"services": {"api": {"image": "x", "helthcheck": {"test": ["CMD", "true"]}}}}
    assert errors_of(compose_validator(), bad)


@pytest.mark.parametrize("path", [*k8s_files(), K8S / "kustomization.yaml"], ids=lambda p: p.name)
def test_every_yaml_document_parses_to_an_object(path: Path):
    docs = load_yaml_documents(path)
    assert docs, f"{path.name} holds no document"
    for doc in docs:
        assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), doc


@pytest.mark.parametrize(
    "obj",
    [o for _, o in k8s_objects()],
    ids=[f"{p.name}:{o.get('kind')}/{o.get('metadata', {}).get('name')}" for p, o in k8s_objects()],
)
def test_kubernetes_object_matches_its_schema(obj: dict[str, Any]):
    assert errors_of(k8s_validator(obj["apiVersion"], obj["kind"]), obj) == []


def test_kubernetes_validator_is_strict():
    """Unknown fields and wrong types are errors (what `kubectl apply --validate=strict` refuses)."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "livenesProbe": {}}]},
            },
        },
    }
    assert errors_of(k8s_validator("apps/v1", "Deployment"), deployment)
    deployment["spec"]["template"]["spec"]["containers"][0] = {
        "name": "c",
        "image": "i",
        "ports": [{"containerPort": "80"}],
    }
    assert errors_of(k8s_validator("apps/v1", "Deployment"), deployment)


def test_keda_schema_rejects_unquoted_trigger_metadata_and_unknown_fields():
    obj = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {
            "scaleTargetRef": {"name": "w"},
            "triggers": [{"type": "redis", "metadata": {"listLength": 5}}],
        },
    }
    assert errors_of(k8s_validator("keda.sh/v1alpha1", "ScaledObject"), obj)
    obj["spec"]["triggers"][0]["metadata"]["listLength"] = "5"
    assert errors_of(k8s_validator("keda.sh/v1alpha1", "ScaledObject"), obj) == []
    obj["spec"]["minReplicas"] = 0
    assert errors_of(k8s_validator("keda.sh/v1alpha1", "ScaledObject"), obj)


def test_redis_trigger_uses_only_parameters_the_scaler_reads():
    for so in [o for _, o in k8s_objects() if o["kind"] == "ScaledObject"]:
        for trigger in so["spec"]["triggers"]:
            if trigger["type"] == "redis":
                assert set(trigger["metadata"]) <= keda().REDIS_SCALER_METADATA, trigger["metadata"]
    for ta in [o for _, o in k8s_objects() if o["kind"] == "TriggerAuthentication"]:
        for ref in ta["spec"].get("secretTargetRef", []):
            assert ref["parameter"] in keda().REDIS_AUTH_PARAMETERS, ref


def test_kustomization_lists_every_manifest():
    (kustomization,) = load_yaml_documents(K8S / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == [p.name for p in k8s_files()]


def test_no_stray_yaml_outside_the_checked_sets():
    checked = {*compose_files(), *k8s_files(), K8S / "kustomization.yaml"}
    found = {*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")}
    assert found <= checked, f"YAML files no test validates: {sorted(str(p) for p in found - checked)}"


def test_readme_per_gpu_worker_pattern_is_valid_compose():
    """deploy/README.md: one service per extra GPU from the `x-worker` anchor, pinned by device_ids."""
    doc = compose()
    extra = {
        **doc["x-worker"],
        "deploy": {
            "resources": {
                "reservations": {
                    "devices": [{"driver": "nvidia", "device_ids": ["1"], "capabilities": ["gpu"]}]
                }
            }
        },
    }
    with_gpu1 = {**doc, "services": {**doc["services"], "worker-gpu1": extra}}
    assert errors_of(compose_validator(), with_gpu1) == []
    assert {k: v for k, v in doc["services"]["worker"].items() if k != "deploy"} == doc["x-worker"]
