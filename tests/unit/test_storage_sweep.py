"""Results and uploads are deleted once both their record and their URL have expired."""

from __future__ import annotations

import os
import time

import fakeredis

from worker.process.janitor import StorageJanitor
from worker.shared.settings import Settings
from worker.shared.storage import LocalStorage


def local(tmp_path) -> LocalStorage:
    storage = LocalStorage(Settings(storage_backend="local", local_storage_dir=str(tmp_path)))
    storage.ensure_ready()
    return storage


def put(storage: LocalStorage, tmp_path, key: str, age_s: float) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 10)
    storage.put_file(src, key, content_type="video/mp4", file_name="v.mp4", base_url="http://x")
    old = time.time() - age_s
    os.utime(storage.path_of(key), (old, old))


def test_local_sweep_deletes_only_expired_objects_and_their_empty_folders(tmp_path):
    storage = local(tmp_path / "store")
    put(storage, tmp_path, f"{storage.prefix}results/old/v.mp4", age_s=7200)
    put(storage, tmp_path, f"{storage.prefix}uploads/new/v.mp4", age_s=10)
    assert storage.sweep(3600) == 1
    assert not (storage.path_of(f"{storage.prefix}results/old/v.mp4")).exists()
    assert not (storage.root / storage.prefix / "results" / "old").exists()
    assert storage.path_of(f"{storage.prefix}uploads/new/v.mp4").exists()
    assert (storage.root / LocalStorage.SECRET_FILE).exists()  # the URL-signing key is never swept


def test_one_janitor_sweeps_per_interval_and_zero_disables(tmp_path):
    storage = local(tmp_path / "store")
    redis = fakeredis.FakeRedis()
    settings = Settings(storage_backend="local", local_storage_dir=str(tmp_path / "store"), result_ttl_s=60,
                        presign_expiry_s=120, storage_sweep_interval_s=30)
    a, b = (StorageJanitor(redis, settings, storage, name) for name in ("w1", "w2"))
    assert a.max_age_s == 120  # a valid URL never points at a deleted object
    put(storage, tmp_path, f"{storage.prefix}results/r1/v.mp4", age_s=300)
    assert a.tick() == 1
    put(storage, tmp_path, f"{storage.prefix}results/r2/v.mp4", age_s=300)
    assert b.tick() == 0  # w1 holds this interval's lock
    off = StorageJanitor(redis, Settings(storage_backend="local", local_storage_dir=str(tmp_path / "store"),
                                         storage_sweep_interval_s=0), storage, "w3")
    assert off.tick() == 0 and storage.path_of(f"{storage.prefix}results/r2/v.mp4").exists()
