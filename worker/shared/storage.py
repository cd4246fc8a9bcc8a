"""Where inputs and results are kept, and the expiring URLs clients download them from.

Two backends behind one small interface:
- `S3Storage`: any S3-compatible store through boto3; URLs are SigV4 presigned GETs, so the
  store itself enforces expiry and integrity.
- `LocalStorage`: a folder shared by the API and the workers; URLs point at the API's `/files/`
  route and carry an HMAC signature and expiry, which the API checks before serving.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import shutil
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from worker.shared.settings import Settings

_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StorageError(RuntimeError):
    pass


@dataclass(frozen=True)
class StoredFile:
    key: str
    url: str
    file_name: str
    content_type: str
    file_size: int

    def as_fal_file(self) -> dict[str, Any]:
        """The `File` object of the fal API."""
        return {"url": self.url, "content_type": self.content_type, "file_name": self.file_name, "file_size": self.file_size}


class Storage(Protocol):
    prefix: str

    def ensure_ready(self) -> None:
        """Create the bucket or folder if allowed; raise StorageError if it cannot be used."""

    def put_file(self, path: Path, key: str, *, content_type: str, file_name: str, base_url: str) -> StoredFile:
        """Store `path` under `key`; the URL of the result is reachable by clients for PRESIGN_EXPIRY_S."""
        ...

    def get_file(self, key: str, dest: Path) -> None:
        """Copy the object `key` to `dest`."""

    def sweep(self, older_than_s: float) -> int:
        """Delete this service's objects (results and uploads) older than `older_than_s`; returns how many."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix` (a fanned-out request's temporary files); returns how many."""


def normalized_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def check_key(key: str) -> str:
    """Keys are built by this service from ids and sanitised names; refuse anything else."""
    parts = key.split("/")
    if not parts or not all(_KEY_PART.match(p) for p in parts):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class S3Storage:
    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = settings.s3_bucket
        self.prefix = normalized_prefix(settings.s3_prefix)
        self.expiry_s = settings.presign_expiry_s
        self.create_bucket = settings.s3_create_bucket
        session = boto3.session.Session(
            aws_access_key_id=settings.aws_access_key_id or None,
            aws_secret_access_key=settings.aws_secret_access_key or None,
            region_name=settings.s3_region,
        )
        custom_endpoint = bool(settings.s3_endpoint_url)
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if custom_endpoint else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        self.client = session.client("s3", endpoint_url=settings.s3_endpoint_url or None, config=config)
        public = settings.s3_public_endpoint_url
        self.presigner = session.client("s3", endpoint_url=public, config=config) if public else self.client

    def ensure_ready(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket", "NotFound") and self.create_bucket:
                self.client.create_bucket(Bucket=self.bucket)
                return
            raise StorageError(f"S3 bucket {self.bucket!r} is not usable: {code or e}") from e

    def put_file(self, path: Path, key: str, *, content_type: str, file_name: str, base_url: str) -> StoredFile:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        check_key(key)
        extra = {"ContentType": content_type, "ContentDisposition": f'inline; filename="{file_name}"'}
        try:
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs=extra)
            url = self.presigner.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.expiry_s
            )
        except (BotoCoreError, ClientError, Boto3Error) as e:
            raise StorageError(f"storing {key} in S3 failed: {e}") from e
        return StoredFile(key, url, file_name, content_type, path.stat().st_size)

    def get_file(self, key: str, dest: Path) -> None:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.download_file(self.bucket, check_key(key), str(dest))
        except (BotoCoreError, ClientError, Boto3Error) as e:
            raise StorageError(f"reading {key} from S3 failed: {e}") from e

    def sweep(self, older_than_s: float) -> int:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        cutoff = time.time() - older_than_s
        deleted = 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                old = [{"Key": o["Key"]} for o in page.get("Contents", []) if o["LastModified"].timestamp() < cutoff]
                for i in range(0, len(old), 1000):  # DeleteObjects takes at most 1000 keys
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": old[i : i + 1000], "Quiet": True})
                    deleted += len(old[i : i + 1000])
        except (BotoCoreError, ClientError, Boto3Error) as e:
            raise StorageError(f"sweeping expired objects from S3 failed: {e}") from e
        return deleted

    def delete_prefix(self, prefix: str) -> int:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        check_key(prefix.rstrip("/"))
        deleted = 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                for i in range(0, len(keys), 1000):
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[i : i + 1000], "Quiet": True})
                    deleted += len(keys[i : i + 1000])
        except (BotoCoreError, ClientError, Boto3Error) as e:
            raise StorageError(f"deleting {prefix}* from S3 failed: {e}") from e
        return deleted


class LocalStorage:
    SECRET_FILE = ".url-signing-key"

    def __init__(self, settings: Settings) -> None:
        self.root = Path(settings.local_storage_dir).resolve()
        self.prefix = normalized_prefix(settings.s3_prefix)
        self.expiry_s = settings.presign_expiry_s
        self._secret = settings.local_storage_secret.encode() if settings.local_storage_secret else None

    def ensure_ready(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.secret  # noqa: B018 (create the shared key now, not on the first request)

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = self._load_or_create_secret()
        return self._secret

    def _load_or_create_secret(self) -> bytes:
        """One random key per storage folder, shared by every process that mounts it.

        Written to a temporary file and hard-linked into place, so concurrent first starts agree
        on a single key and nobody reads a half-written one.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / self.SECRET_FILE
        if not path.exists():
            tmp = self.root / f"{self.SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip().encode()

    def path_of(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise StorageError(f"invalid storage key {key!r}")
        return path

    def put_file(self, path: Path, key: str, *, content_type: str, file_name: str, base_url: str) -> StoredFile:
        dest = self.path_of(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        return StoredFile(key, self.signed_url(key, base_url), file_name, content_type, dest.stat().st_size)

    def get_file(self, key: str, dest: Path) -> None:
        shutil.copyfile(self.path_of(key), dest)

    def sweep(self, older_than_s: float) -> int:
        cutoff = time.time() - older_than_s
        top = self.root / self.prefix if self.prefix else self.root
        deleted = 0
        if not top.is_dir():
            return 0
        for path in sorted(top.rglob("*"), reverse=True):  # files before the folders holding them
            if path.name == self.SECRET_FILE:
                continue
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                deleted += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        return deleted

    def delete_prefix(self, prefix: str) -> int:
        folder = self.path_of(prefix.rstrip("/"))
        if folder.is_file():  # a whole key
            folder.unlink(missing_ok=True)
            return 1
        if not folder.is_dir():
            return 0
        deleted = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        return deleted

    def _signature(self, key: str, expires: int) -> str:
        return hmac.new(self.secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def signed_url(self, key: str, base_url: str) -> str:
        if not base_url:
            raise StorageError("local storage needs PUBLIC_BASE_URL (or a request base URL) to build file URLs")
        expires = int(time.time()) + self.expiry_s
        query = urllib.parse.urlencode({"expires": expires, "signature": self._signature(key, expires)})
        return f"{base_url.rstrip('/')}/files/{urllib.parse.quote(key)}?{query}"

    def verify(self, key: str, expires: int, signature: str) -> Path | None:
        """The file behind a signed URL, or None if the signature is wrong, expired, or the file is gone."""
        if expires < time.time():
            return None
        if not hmac.compare_digest(self._signature(key, expires), signature):
            return None
        try:
            path = self.path_of(key)
        except StorageError:
            return None
        return path if path.is_file() else None


def build_storage(settings: Settings) -> S3Storage | LocalStorage:
    return S3Storage(settings) if settings.storage_backend == "s3" else LocalStorage(settings)


def result_key(storage: Storage, request_id: str, file_name: str) -> str:
    return f"{storage.prefix}results/{request_id}/{file_name}"


def upload_key(storage: Storage, upload_id: str, file_name: str) -> str:
    return f"{storage.prefix}uploads/{upload_id}/{file_name}"


def input_key(storage: Storage, request_id: str) -> str:
    return f"{storage.prefix}inputs/{request_id}/input"


def temp_prefix(storage: Storage, request_id: str) -> str:
    """Where a fanned-out request keeps its temporary objects (its input, its segments' outputs), all
    deleted together when the request ends."""
    return f"{storage.prefix}tmp/{request_id}/"


def temp_key(storage: Storage, request_id: str, name: str) -> str:
    return f"{temp_prefix(storage, request_id)}{name}"
