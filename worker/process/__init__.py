"""The worker process: one per device, the model loaded once, jobs taken from RQ one at a time.

`main` (`python -m worker`) builds the `runtime` (Redis, storage, the warm `engine`) and `serve`s RQ's
non-forking worker; `jobs` runs one request end to end and `webhook_delivery` POSTs outcomes. Beside
the jobs: `liveness` (heartbeats and the models on offer), `reaper` (requeue what dead workers held),
`janitor` (expire stored files), `scratch` (per-worker temp folders) and `faults` (test-only crash points).
"""
