"""Every setting of the API and the worker, read from the environment in exactly one place.

Both processes call `Settings.from_env()` once at start-up and pass the frozen result down, so no
other module of the service reads `os.environ` and a test can build a `Settings(...)` by hand. The
exceptions are outside the service's settings on purpose: `rife_core` (a library with its own CLI,
which cannot import `worker`) reads `RIFE_CACHE_DIR`/`RIFE_MODEL_DIR` for where weights live, and the
dev-only `worker.dev.localstack` reads `RIFE_DATA_DIR`/`API_PORT` to place the servers `make run` starts;
the README lists both groups. Each field names
its environment variable and says what it means (the dataclass field metadata); `describe()` turns
that into the table the README shows, so the docs cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used; the message names it."""


def _setting(env: str, default: Any, meaning: str, *, secret: bool = False) -> Any:
    return field(default=default, repr=not secret, metadata={"env": env, "meaning": meaning, "secret": secret})


@dataclass(frozen=True)
class Settings:
    # --- queue -----------------------------------------------------------------------------
    redis_url: str = _setting("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis holding the queue, request records and logs.")
    rq_queue: str = _setting(
        "RQ_QUEUE",
        "rife-video",
        "RQ queue the interpolation jobs go to; webhook deliveries use `<RQ_QUEUE>-webhooks`. Also the prefix of the request records' Redis keys.",
    )
    job_timeout_s: int = _setting("JOB_TIMEOUT_S", 3600, "Longest one job may run before the worker stops it (error `generation_timeout`).")
    queue_ttl_s: int = _setting("QUEUE_TTL_S", 86400, "Longest a request may wait in the queue; then it ends COMPLETED with error `queue_timeout`.")
    result_ttl_s: int = _setting("RESULT_TTL_S", 86400, "How long a finished request (status, logs, result) stays readable.")
    sync_timeout_s: int = _setting("SYNC_TIMEOUT_S", 3600, "Longest the synchronous run route waits for its job.")

    # --- worker liveness (a dead worker's request is requeued within WORKER_LOST_AFTER_S + REAPER_INTERVAL_S) ---
    worker_heartbeat_s: float = _setting(
        "WORKER_HEARTBEAT_S", 5.0, "How often a worker refreshes its liveness key in Redis (naming the request it is running)."
    )
    worker_lost_after_s: float = _setting(
        "WORKER_LOST_AFTER_S",
        30.0,
        "A worker whose liveness key is this old is dead: its running request goes back to the queue. Must exceed WORKER_HEARTBEAT_S.",
    )
    storage_sweep_interval_s: float = _setting(
        "STORAGE_SWEEP_INTERVAL_S",
        3600.0,
        "How often one worker deletes stored results and uploads older than max(RESULT_TTL_S, PRESIGN_EXPIRY_S); 0 disables it.",
    )
    reaper_interval_s: float = _setting(
        "REAPER_INTERVAL_S", 10.0, "How often workers look for requests left running by dead workers (one worker at a time)."
    )
    max_job_attempts: int = _setting(
        "MAX_JOB_ATTEMPTS",
        3,
        "Runs of one request that may die with their worker; after that many it ends COMPLETED with error `worker_lost`.",
    )
    worker_stop_grace_s: float = _setting(
        "WORKER_STOP_GRACE_S",
        0.0,
        "After SIGTERM, how long the running job may go on before it is handed back to the queue for another worker; 0 lets it finish (up to JOB_TIMEOUT_S).",
    )
    worker_tmp_dir: str = _setting(
        "WORKER_TMP_DIR",
        "",
        "Folder of the workers' temporary files (one locked subfolder per worker; a crashed worker's is removed by the next start). Empty: `rife-video-worker` in the system temp folder.",
    )

    # --- fan-out (one long request across many workers) --------------------------------------
    split_min_s: float = _setting(
        "SPLIT_MIN_S",
        300.0,
        "An input longer than this many seconds is cut into segments that run as separate jobs on any idle worker, then joined into one result (the request stays one request to the client). 0 disables fan-out.",
    )
    split_segment_s: float = _setting(
        "SPLIT_SEGMENT_S", 60.0, "Length of one fan-out segment in seconds (boundaries fall on the input's keyframes, so about this long)."
    )
    encode_segments: int = _setting(
        "ENCODE_SEGMENTS", 0, "x264 (or other CPU) encoders one job runs at once on consecutive chunks of its output, each with a share of the cores; 0: one per 4 CPU cores."
    )

    # --- API -------------------------------------------------------------------------------
    api_host: str = _setting("API_HOST", "127.0.0.1", "Address `python -m api` binds.")
    api_port: int = _setting("API_PORT", 8000, "Port `python -m api` binds.")
    api_tls_cert: str = _setting("API_TLS_CERT", "", "PEM certificate chain to serve HTTPS (with API_TLS_KEY); empty serves plain HTTP.")
    api_tls_key: str = _setting("API_TLS_KEY", "", "PEM private key for API_TLS_CERT.")
    api_keys: tuple[str, ...] = _setting(
        "API_KEYS",
        (),
        "Comma-separated keys accepted in `Authorization: Key <key>`; each key sees only its own requests. Empty disables auth (the API warns loudly at start-up).",
        secret=True,
    )
    public_base_url: str = _setting(
        "PUBLIC_BASE_URL",
        "",
        "Base URL clients reach the API at, used in status/response/cancel and local file URLs. Empty derives it from each request.",
    )
    max_queued_per_key: int = _setting(
        "MAX_QUEUED_PER_KEY", 100, "Most unfinished (queued or running) requests one API key may have; more get 429 `too_many_requests_queued`. 0 = no limit."
    )
    rate_limit_requests: int = _setting(
        "RATE_LIMIT_REQUESTS",
        3000,
        "Requests one API key may make per RATE_LIMIT_WINDOW_S on the keyed routes (status polls included); more get 429 `rate_limited` with Retry-After. 0 = no limit.",
    )
    rate_limit_window_s: int = _setting("RATE_LIMIT_WINDOW_S", 60, "Length of the rate limit's window in seconds.")
    sse_keepalive_s: float = _setting("SSE_KEEPALIVE_S", 15.0, "Interval of `: keep-alive` comments on the status stream.")
    log_level: str = _setting("LOG_LEVEL", "INFO", "Python log level of the API and worker processes.")
    log_format: str = _setting(
        "LOG_FORMAT", "json", "`json`: one JSON object per log line, with the `request_id` it concerns (for log shippers); `text`: plain lines."
    )
    metrics_public: bool = _setting(
        "METRICS_PUBLIC",
        True,
        "Serve `GET /metrics` (Prometheus) without an API key; it holds aggregate counts only. `false` requires `Authorization: Key <key>` as the other routes do.",
    )

    # --- storage ---------------------------------------------------------------------------
    storage_backend: str = _setting(
        "STORAGE_BACKEND",
        "local",
        "`s3` (any S3-compatible store, presigned GET URLs) or `local` (files on disk served by the API with HMAC-signed expiring URLs).",
    )
    local_storage_dir: str = _setting(
        "LOCAL_STORAGE_DIR", "var/storage", "Folder of the local backend; the API and workers must share it."
    )
    local_storage_secret: str = _setting(
        "LOCAL_STORAGE_SECRET",
        "",
        "HMAC key signing local file URLs. Empty: a random key is created once in LOCAL_STORAGE_DIR and shared through it.",
        secret=True,
    )
    s3_endpoint_url: str = _setting("S3_ENDPOINT_URL", "", "S3 endpoint (e.g. SeaweedFS or MinIO); empty means AWS.")
    s3_public_endpoint_url: str = _setting(
        "S3_PUBLIC_ENDPOINT_URL", "", "Endpoint written into presigned URLs when clients reach S3 by another address; empty uses S3_ENDPOINT_URL."
    )
    s3_bucket: str = _setting("S3_BUCKET", "rife-video", "Bucket for uploads and results.")
    s3_prefix: str = _setting("S3_PREFIX", "rife-video/", "Key prefix of every object this service writes.")
    s3_region: str = _setting("S3_REGION", "us-east-1", "Region used for SigV4 signing.")
    s3_create_bucket: bool = _setting("S3_CREATE_BUCKET", False, "Create S3_BUCKET at start-up when it does not exist.")
    aws_access_key_id: str = _setting("AWS_ACCESS_KEY_ID", "", "S3 access key; empty uses boto3's default credential chain.")
    aws_secret_access_key: str = _setting("AWS_SECRET_ACCESS_KEY", "", "S3 secret key.", secret=True)
    storage_retry_budget_s: float = _setting(
        "STORAGE_RETRY_BUDGET_S",
        60.0,
        "How long a job waits for storage (input read, result upload) to come back, retrying with backoff, before it fails with `storage_error`.",
    )
    storage_attempts: int = _setting(
        "STORAGE_ATTEMPTS", 0, "At most this many tries of one storage transfer, also within STORAGE_RETRY_BUDGET_S; 0: no limit but the budget."
    )
    storage_backoff_s: float = _setting(
        "STORAGE_BACKOFF_S", 1.0, "Wait before the second storage try; doubled before each further one (at most 5 s)."
    )
    presign_expiry_s: int = _setting("PRESIGN_EXPIRY_S", 86400, "Lifetime of result and upload URLs (S3 presigned or locally signed).")

    # --- inputs ----------------------------------------------------------------------------
    max_input_bytes: int = _setting("MAX_INPUT_BYTES", 256 * 1024 * 1024, "Largest input video accepted (download, upload or data: URI).")
    fetch_timeout_s: float = _setting("FETCH_TIMEOUT_S", 120.0, "Longest a `video_url` download may take, redirects included.")
    fetch_allow: tuple[str, ...] = _setting(
        "FETCH_ALLOW",
        (),
        "Comma-separated hosts and CIDRs that `video_url` and webhooks may reach although private, loopback or link-local (e.g. `127.0.0.0/8,minio`).",
    )
    fetch_deny: tuple[str, ...] = _setting(
        "FETCH_DENY",
        (),
        "Comma-separated `address:port` or `CIDR:port` (IPv6 in brackets, e.g. `[::1]:6379`) that `video_url` and webhooks may never reach, even when FETCH_ALLOW allows the address: the service's own Redis and storage internals (`make run` sets it to its Redis and SeaweedFS master, volume, filer and gRPC ports).",
    )

    # --- job limits (checked when the input is probed, before any inference; 0 = no limit) ---
    max_video_duration_s: float = _setting("MAX_VIDEO_DURATION_S", 600.0, "Longest input video, in seconds.")
    max_video_frames: int = _setting("MAX_VIDEO_FRAMES", 20_000, "Most frames an input video may have.")
    max_video_width: int = _setting(
        "MAX_VIDEO_WIDTH", 3840, "Widest input; compared orientation-free (a portrait 2160x3840 passes 3840x2160)."
    )
    max_video_height: int = _setting("MAX_VIDEO_HEIGHT", 2160, "Tallest input (orientation-free, see MAX_VIDEO_WIDTH).")
    max_output_frames: int = _setting("MAX_OUTPUT_FRAMES", 100_000, "Most frames one output video may have.")
    max_output_bytes: int = _setting(
        "MAX_OUTPUT_BYTES", 8 * 1024**3, "Largest output file; a bigger one is not stored and the job fails with `output_too_large`."
    )

    # --- model -----------------------------------------------------------------------------
    rife_model: str = _setting("RIFE_MODEL", "rife-4.0", "Model name (see `rife-video models`) or weights path; loaded once per worker.")
    rife_device: str = _setting("RIFE_DEVICE", "", "Torch device (`cuda`, `cuda:1`, `cpu`); empty picks CUDA when available (respects CUDA_VISIBLE_DEVICES).")
    rife_precision: str = _setting(
        "RIFE_PRECISION", "auto", "Number format the model computes in: `auto` is fp16 on a GPU, bf16 (under autocast: "
        "0.70-0.78x the fp32 time at 720p, no measurable PSNR cost; bench/RESULTS.md) on a CPU with AVX-512 BF16 or AMX, "
        "fp32 on other CPUs; `fp32`, `bf16` or `fp16` (GPU only) force one. A CPU worker refuses fp16, and bf16 "
        "without native support, at start."
    )
    rife_batch_size: int = _setting("RIFE_BATCH_SIZE", 0, "Frame pairs per model call; 0 keeps the pipeline's default.")
    torch_threads: int = _setting(
        "TORCH_THREADS", 0, "CPU threads the model uses in this worker (torch's intra-op threads); 0: every core. "
        "Several CPU workers on one machine each need a share (cores / workers; `make run WORKERS=N` sets it), "
        "or their threads contend and every job slows down many times."
    )
    x264_preset: str = _setting(
        "X264_PRESET", "", "x264 preset of the output (`ultrafast` ... `veryslow`): faster presets trade file size "
        "for encoding speed, which bounds a GPU worker's output rate. Empty: `superfast` on a GPU, `veryfast` on "
        "the CPU (see bench/RESULTS.md)."
    )
    video_encoder: str = _setting(
        "VIDEO_ENCODER", "auto", "H.264/HEVC/AV1 encoder: `nvenc` encodes on the GPU's video engine (L4, L40S, A10, RTX; "
        "not H100/H200, which have none), `x264` on the CPU (x264/x265/SVT-AV1), `auto` NVENC on a CUDA worker "
        "where it opens. An NVENC encoder that cannot be opened falls back to the CPU with a log line."
    )
    keep_location_metadata: bool = _setting(
        "KEEP_LOCATION_METADATA", False, "Keep the input's location (GPS) tags in the output. By default they are "
        "dropped (personal data phones add silently); title, creation time and chapters are always carried."
    )
    rife_engine: str = _setting(
        "RIFE_ENGINE", "worker.process.engine:RifeEngine", "`module:Class` the worker runs jobs with; tests swap in stand-ins."
    )

    # --- webhooks --------------------------------------------------------------------------
    webhook_timeout_s: float = _setting("WEBHOOK_TIMEOUT_S", 15.0, "Timeout of one webhook POST.")
    webhook_retry_delays_s: tuple[int, ...] = _setting(
        "WEBHOOK_RETRY_DELAYS_S", (5, 30, 120, 600, 1800, 3600), "Delays between webhook retries; one retry per entry."
    )

    def __post_init__(self) -> None:
        if self.storage_backend not in ("s3", "local"):
            raise SettingsError(f"STORAGE_BACKEND must be 's3' or 'local', not {self.storage_backend!r}")
        for name in (
            "job_timeout_s", "queue_ttl_s", "result_ttl_s", "sync_timeout_s", "presign_expiry_s", "max_input_bytes",
            "worker_heartbeat_s", "reaper_interval_s", "max_job_attempts", "rate_limit_window_s",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{_env_name(name)} must be positive")
        for name in (
            "max_video_duration_s", "max_video_frames", "max_video_width", "max_video_height", "max_output_frames",
            "max_output_bytes", "max_queued_per_key", "rate_limit_requests", "worker_stop_grace_s", "storage_attempts",
            "storage_retry_budget_s", "split_min_s", "encode_segments", "torch_threads",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{_env_name(name)} must be 0 (no limit) or positive")
        if self.storage_backend == "s3" and self.presign_expiry_s > 7 * 86400:
            raise SettingsError("PRESIGN_EXPIRY_S may not exceed 604800 (SigV4 limit) with STORAGE_BACKEND=s3")
        if self.rife_precision not in ("auto", "fp32", "fp16", "bf16"):
            raise SettingsError(f"RIFE_PRECISION must be 'auto', 'fp32', 'fp16' or 'bf16', not {self.rife_precision!r}")
        if self.video_encoder not in ("auto", "x264", "nvenc"):
            raise SettingsError(f"VIDEO_ENCODER must be 'auto', 'x264' or 'nvenc', not {self.video_encoder!r}")
        if self.log_format not in ("json", "text"):
            raise SettingsError(f"LOG_FORMAT must be 'json' or 'text', not {self.log_format!r}")
        if self.worker_lost_after_s <= self.worker_heartbeat_s:
            raise SettingsError("WORKER_LOST_AFTER_S must exceed WORKER_HEARTBEAT_S (a live worker would look dead)")
        if self.split_segment_s <= 0:
            raise SettingsError("SPLIT_SEGMENT_S must be positive")
        if self.storage_backoff_s < 0:
            raise SettingsError("STORAGE_BACKOFF_S must be 0 or positive")
        if bool(self.api_tls_cert) != bool(self.api_tls_key):
            raise SettingsError("API_TLS_CERT and API_TLS_KEY must be set together")
        for entry in self.fetch_allow:
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError as e:
                    raise SettingsError(f"FETCH_ALLOW entry {entry!r} is not a valid CIDR") from e
        from worker.shared.fetch import parse_endpoint

        for entry in self.fetch_deny:
            try:
                parse_endpoint(entry)
            except ValueError as e:
                raise SettingsError(f"FETCH_DENY entry {entry!r}: {e}") from e

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `env` (default: the process environment); unset or empty variables keep their default."""
        env = os.environ if env is None else env
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f.metadata["env"], "").strip()
            if raw:
                values[f.name] = _parse(f.metadata["env"], hints[f.name], raw)
        values.update(overrides)
        return cls(**values)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    def own_storage_prefixes(self) -> tuple[str, ...]:
        """URL prefixes of this service's own presigned storage URLs (`<endpoint>/<bucket>/<prefix>`, path
        style, as presigned for a custom endpoint): the one thing a `video_url` may fetch from a FETCH_DENY
        port, since the storage server checks their signature (see worker.shared.fetch.AddressPolicy)."""
        if self.storage_backend != "s3":
            return ()
        endpoints = {e.rstrip("/") for e in (self.s3_endpoint_url, self.s3_public_endpoint_url) if e}
        return tuple(sorted(f"{e}/{self.s3_bucket}/{self.s3_prefix}" for e in endpoints))

    @property
    def webhook_queue(self) -> str:
        return f"{self.rq_queue}-webhooks"


def _parse(env: str, hint: Any, raw: str) -> Any:
    try:
        if hint is bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if hint in (int, float, str):
            return hint(raw)
        if typing.get_origin(hint) is tuple:
            (item, _) = typing.get_args(hint)
            return tuple(item(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError as e:
        raise SettingsError(f"{env}={raw!r}: {e}") from e
    raise TypeError(f"no parser for {hint!r}")  # a new field type needs a branch above


def _env_name(field_name: str) -> str:
    return next(f.metadata["env"] for f in dataclasses.fields(Settings) if f.name == field_name)


def _format_default(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe() -> list[tuple[str, str, str]]:
    """(environment variable, default, meaning) for every setting, in declaration order."""
    return [
        (f.metadata["env"], _format_default(f.default), f.metadata["meaning"]) for f in dataclasses.fields(Settings)
    ]


def markdown_table() -> str:
    """The settings as a Markdown table, for the README (`python -m worker.shared.settings`)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{env}` | `{default}` | {meaning} |" if default else f"| `{env}` | | {meaning} |" for env, default, meaning in describe()]
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
