"""What the API and the workers share: the request's state and the services it lives in.

Settings (`settings`), the request type (`video_input`), the request record and its client-visible log
in Redis (`requests`, `request_log`), the RQ queue side (`queue`, `webhooks`), storage (`storage`,
`retrying`), the guarded fetch (`fetch`), errors in the user's words (`failures`), metrics, the models
the cluster offers (`model_offers`) and the process-wide log format and redaction (`process_log`,
`redact`). Nothing here imports torch or the pipeline: the API image runs on this alone.
"""
