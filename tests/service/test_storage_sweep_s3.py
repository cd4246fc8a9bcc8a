"""The S3 backend's sweep against a real SeaweedFS: old objects under our prefix go, others stay."""

from __future__ import annotations

import time

from worker.shared.settings import Settings
from worker.shared.storage import S3Storage


def test_s3_sweep_deletes_objects_older_than_the_age(backends, tmp_path):
    settings = Settings.from_env(backends, s3_prefix="sweep-test/")
    storage = S3Storage(settings)
    storage.ensure_ready()
    src = tmp_path / "v.mp4"
    src.write_bytes(b"x" * 100)
    keys = [f"sweep-test/results/r{i}/v.mp4" for i in range(3)]
    for key in keys:
        storage.put_file(src, key, content_type="video/mp4", file_name="v.mp4", base_url="")
    storage.client.put_object(Bucket=storage.bucket, Key="elsewhere/keep.bin", Body=b"not ours")
    assert storage.sweep(3600) == 0  # all fresh
    time.sleep(1.5)  # S3 times are whole seconds
    assert storage.sweep(1) == 3
    listed = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix="sweep-test/").get("Contents", [])
    assert listed == []
    storage.client.head_object(Bucket=storage.bucket, Key="elsewhere/keep.bin")  # outside our prefix: kept
