"""Where audio lives when several nodes share the work: a local folder or an S3 bucket.

One node renders a voice prompt; the provider may fetch it, through a load
balancer, from any other node. One node downloads a caller's recording; an
operator may play it from any other. ``MIGRANTLINE_AUDIO_STORE=s3`` puts both
in one S3-compatible bucket (AWS, MinIO, ...) that every node reads; ``local``
(the default) keeps a single node's files in its data folder, as before.

Keys are relative paths (``tts/en/<sha>.wav``, ``recordings/<random>``); a
recording's bytes arrive here already sealed, so the bucket never holds a
caller's voice in clear. The S3 client has short timeouts and few retries:
a dead bucket costs a webhook a second or two, never a stall, and callers
still hear the provider's own voice (see ``voice_prompts.serve``).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from ussd_app import settings

_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")
CONNECT_TIMEOUT, READ_TIMEOUT, ATTEMPTS = 2.0, 5.0, 2


class AudioStoreError(Exception):
    """The store could not be reached or answered an error (not: the key is absent)."""


def check_key(key: str) -> str:
    """``key`` if it is a plain relative path (no ``..``, no leading ``/``), else ValueError."""
    if not _KEY.fullmatch(key) or any(part.startswith("..") for part in key.split("/")):
        raise ValueError(f"not an audio key: {key!r}")
    return key


class AudioStore(Protocol):
    shared: bool  # True when other nodes see what this one puts

    def get(self, key: str) -> bytes | None: ...
    def put(self, key: str, data: bytes) -> None: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str = "") -> Iterator[str]: ...


class LocalAudioStore:
    """Files under one folder; writes are atomic (a temporary file renamed into place)."""

    shared = False

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / check_key(key)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[str]:
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.rglob("*")):
            key = path.relative_to(self.folder).as_posix()
            if path.is_file() and not path.name.startswith(".tmp-") and key.startswith(prefix):
                yield key


class S3AudioStore:
    """Objects in an S3-compatible bucket, under ``prefix``; every node sees the same."""

    shared = True

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, credentials: dict[str, str] | None = None):
        import boto3  # lazy: only deployments with a bucket load boto3 (slow import)
        from botocore.config import Config  # lazy: as boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                        retries={"max_attempts": ATTEMPTS, "mode": "standard"})
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None,
                                   region_name=region or None, config=config,
                                   **(credentials or {}))

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError  # lazy: as boto3

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise KeyError(kwargs.get("Key")) from exc
            raise AudioStoreError(f"S3 {method}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise AudioStoreError(f"S3 {method}: {exc}") from exc

    def get(self, key: str) -> bytes | None:
        try:
            body = self._call("get_object", Key=self._name(key))["Body"]
        except KeyError:
            return None
        try:
            return bytes(body.read())
        except Exception as exc:  # a connection cut mid-body
            raise AudioStoreError(f"S3 get_object: {exc}") from exc

    def put(self, key: str, data: bytes) -> None:
        self._call("put_object", Key=self._name(key), Body=data)

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=self._name(key))
        except KeyError:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=self._name(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        token: dict[str, str] = {}
        while True:
            page = self._call("list_objects_v2", Prefix=self.prefix + prefix, **token)
            for item in page.get("Contents", []):
                yield str(item["Key"])[len(self.prefix):]
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": str(page["NextContinuationToken"])}


def from_config(config: settings.Config) -> AudioStore:
    """The store the settings name: ``s3``, or ``local``, a folder of the data dir that
    nothing shares (``shared`` is False: the service keeps a lone node's prompts and
    recordings where it always has, the data folder and the database)."""
    config = settings.of(config)
    if config.audio_store != "s3":
        return LocalAudioStore(config.data_dir / "audio" / "store")
    (bucket,) = config.required("MIGRANTLINE_AUDIO_STORE=s3", "MIGRANTLINE_S3_BUCKET")
    # Credentials: boto3's own chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, a profile,
    # an instance role); nothing of them is kept in MigrantLine's settings.
    return S3AudioStore(bucket, config.s3_prefix or "", config.s3_endpoint_url,
                        config.s3_region)
