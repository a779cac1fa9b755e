"""The shared audio store: two nodes, one S3 bucket (moto's S3 server, started here).

A provider fetching a prompt through a load balancer may reach any node, and an
operator may play a recording from any node: both are driven over HTTP on two
apps with their own data folders and one bucket. What goes into the bucket is
checked in the bucket itself (recordings sealed; erased recordings gone), and a
bucket nobody can reach must leave callers hearing the provider's voice.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from flask import Flask
from moto.server import ThreadedMotoServer

from tests.conftest import make_app
from tests.dashboard.conftest import add_operator, cheap_hashes, sign_in
from tests.recording_server import RecordingServer, Reply
from tests.test_voice_recordings import file_complaint, settle
from tests.voice_phone import VoiceCaller
from ussd_app.audio_store import AudioStoreError, LocalAudioStore, S3AudioStore
from ussd_app.privacy import rekey

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 server for real, on a free port: boto3 talks HTTP to it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh bucket (and the AWS credentials every node reads from the environment)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    s3 = boto3.resource("s3", endpoint_url=s3_server, region_name=REGION)
    found = s3.create_bucket(Bucket=f"ml-{uuid.uuid4().hex[:12]}")
    yield found
    found.objects.all().delete()
    found.delete()


def node(tmp_path: Path, name: str, endpoint: str, bucket_name: str, **extra: str) -> Flask:
    return make_app(tmp_path / name, MIGRANTLINE_AUDIO_STORE="s3",
                    MIGRANTLINE_S3_BUCKET=bucket_name, MIGRANTLINE_S3_ENDPOINT_URL=endpoint,
                    MIGRANTLINE_S3_REGION=REGION, MIGRANTLINE_RECORDING_HOSTS="http://127.0.0.1",
                    **extra)


@pytest.fixture
def nodes(tmp_path: Path, s3_server: str, bucket: Any) -> Iterator[tuple[Flask, Flask]]:
    a = node(tmp_path, "a", s3_server, bucket.name)
    b = node(tmp_path, "b", s3_server, bucket.name)
    yield a, b
    for app in (a, b):
        app.extensions["migrantline"].store.close()


def services(app: Flask) -> Any:
    return app.extensions["migrantline"]


def language_prompt(app: Flask) -> Any:
    s = services(app)
    return s.prompts.manifest(s.content.current, s.t).get("en", "language/en")


def local_path(app: Flask, url: str) -> Path:
    name, _, rest = urlsplit(url).path.removeprefix("/audio/").partition("/")
    return services(app).prompts.roots[name] / rest


# ---------------------------------------------------------------- prompts


def test_a_prompt_rendered_on_one_node_is_served_by_the_other(
        nodes: tuple[Flask, Flask], bucket: Any) -> None:
    a, b = nodes
    prompt = language_prompt(a)
    assert not any("/audio/tts/" in u for u in VoiceCaller(a.test_client()).dial().plays)
    services(a).prompts.render_prompt(prompt)  # node A renders it (and shares it)
    [url] = [u for u in VoiceCaller(a.test_client()).dial().plays if "/audio/tts/" in u]
    made = local_path(a, url).read_bytes()
    assert not local_path(b, url).exists()  # B never rendered it
    keys = [o.key for o in bucket.objects.all()]
    assert any(k.endswith(urlsplit(url).path.removeprefix("/audio/")) for k in keys), keys
    # The provider's fetch lands on B (a load balancer): B serves it from the bucket...
    parts = urlsplit(url)
    response = b.test_client().get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200
    assert response.data == made and response.mimetype == "audio/mpeg"
    assert local_path(b, url).read_bytes() == made  # ...and keeps a local copy
    # B's own background rendering takes A's file rather than generating it again.
    local_path(b, url).unlink()
    services(b).prompts.render_prompt(language_prompt(b))
    assert local_path(b, url).read_bytes() == made
    assert b.test_client().get("/audio/tts/en/not-there.wav").status_code == 404


def test_an_unreachable_bucket_leaves_the_provider_speaking(tmp_path: Path,
                                                            bucket: Any) -> None:
    """The bucket down: the webhook still answers at once with the prompt said, nothing
    fails with a 500, and a node renders and serves its own audio as it does alone."""
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    app = node(tmp_path, "down", dead, bucket.name)
    try:
        prompt = language_prompt(app)
        heard = VoiceCaller(app.test_client()).dial()
        assert heard.says and not any("/audio/tts/" in u for u in heard.plays)
        sha = services(app).prompts.generated_path("en", prompt.text).name
        assert app.test_client().get(f"/audio/tts/en/{sha}").status_code == 404
        services(app).prompts.render_prompt(prompt)  # shared: no; generated: yes
        [url] = [u for u in VoiceCaller(app.test_client()).dial().plays if "/audio/tts/" in u]
        parts = urlsplit(url)
        assert app.test_client().get(f"{parts.path}?{parts.query}").status_code == 200
    finally:
        services(app).store.close()
    with pytest.raises(AudioStoreError):
        S3AudioStore(bucket.name, "", dead, REGION).get("tts/en/x.wav")


# ---------------------------------------------------------------- recordings


def test_a_recording_fetched_on_one_node_is_sealed_in_the_bucket_and_erased_from_it(
        nodes: tuple[Flask, Flask], bucket: Any, recording_server: RecordingServer,
        audio: dict[str, bytes], database: str | None) -> None:
    a, b = nodes
    # On SQLite each node has its own database file (SQLite is one node): the operator
    # plays it on A then; on PostgreSQL both nodes share the database, as in production.
    player = b if database else a
    c = file_complaint(a)
    url = recording_server.route("/rec/shared.wav", Reply(body=audio["wav"]))
    assert services(a).recordings.expect(c["reference"], "africastalking", url, 2,
                                         key="shared-1")
    [row] = settle(a, c["reference"])
    assert row["status"] == "stored", row
    db_row = services(a).store.db().execute(
        "select audio_sealed, audio_key from voice_recordings where id = ?",
        [row["id"]]).fetchone()
    assert db_row[0] is None and db_row[1].startswith("recordings/")
    assert c["reference"] not in db_row[1]
    [obj] = [o for o in bucket.objects.all() if o.key.endswith(db_row[1])]
    stored = obj.get()["Body"].read()
    assert stored != audio["wav"] and audio["wav"][200:264] not in stored  # sealed
    cheap_hashes(player)
    add_operator(player, "op@example.org")
    op = player.test_client()
    assert sign_in(op, "op@example.org").status_code == 303
    played = op.get(f"/operator/complaints/{c['id']}/recordings/{row['id']}")
    assert played.status_code == 200 and played.data == audio["wav"]
    with pytest.raises(rekey.Unreadable, match="bucket"):  # refused, not half done
        rekey.rotate(services(a).store, b"old", b"new")
    assert services(a).complaints.erase(c["reference"])
    # The erasure deletes the object right after (in the background; a bucket down at
    # that moment: with the next retry round, as the row keeps the key until then).
    deadline = time.monotonic() + 10
    while any(o.key.endswith(db_row[1]) for o in bucket.objects.all()):
        assert time.monotonic() < deadline, "the erased recording is still in the bucket"
        time.sleep(0.05)
    deadline = time.monotonic() + 10
    while services(a).store.db().execute("select audio_key from voice_recordings "
                                         "where id = ?", [row["id"]]).fetchone()[0]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert op.get(f"/operator/complaints/{c['id']}/recordings/{row['id']}"
                  ).status_code == 404


def test_a_recording_is_retried_while_the_bucket_is_down(
        tmp_path: Path, bucket: Any, recording_server: RecordingServer,
        audio: dict[str, bytes]) -> None:
    app = node(tmp_path, "down", f"http://127.0.0.1:{free_port()}", bucket.name)
    try:
        c = file_complaint(app)
        url = recording_server.route("/rec/down.wav", Reply(body=audio["wav"]))
        services(app).recordings.expect(c["reference"], "africastalking", url, 2, key="d-1")
        [row] = settle(app, c["reference"])
        assert row["status"] == "failed" and "audio store" in row["error"], row
    finally:
        services(app).store.close()


def test_the_local_store_writes_atomically_and_lists(tmp_path: Path) -> None:
    store = LocalAudioStore(tmp_path / "audio")
    store.put("tts/en/a.wav", b"one")
    store.put("tts/en/a.wav", b"two")
    assert store.get("tts/en/a.wav") == b"two" and store.exists("tts/en/a.wav")
    assert list(store.list("tts/")) == ["tts/en/a.wav"]
    store.delete("tts/en/a.wav")
    assert store.get("tts/en/a.wav") is None and not store.exists("tts/en/a.wav")
    for bad in ("../x.wav", "/etc/passwd", "tts/../../x"):
        with pytest.raises(ValueError):
            store.put(bad, b"")
