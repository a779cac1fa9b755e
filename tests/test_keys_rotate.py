"""``migrantline keys rotate``: complaints filed, the key rotated, the service restarted with
the new key reads everything back; the old key opens nothing left in the data folder."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from ussd_app import rekey, settings
from ussd_app.cli import main
from ussd_app.privacy import BytesSealer, PhoneHasher, Sealer
from ussd_app.store import voice_recordings as recordings_db

from .conftest import ROOT, TEST_SECRET, Phone, make_app
from .test_cli import BIN, env_for, free_port
from .test_complaints import (
    DESCRIPTION,
    choice,
    file_report,
    follow,
    reference_in,
    start_report,
)
from .test_sms import Texter

NEW_KEY = "rotated-9Yq2Lw7Xc4Nv1Bz8Kd5Hs3Fj6Tm0Rp-Ue_Ga4Ww"
AUDIO = b"RIFF....WAVEfmt a caller's voice, as bytes"


def sealed_values(app: Flask) -> list[tuple[rekey.SealedColumn, int, object]]:
    """Every sealed value in the database: (column, rowid, stored value)."""
    conn = app.extensions["migrantline"].store.db().conn
    found = []
    for column in rekey.SEALED_COLUMNS:
        for rowid, value in conn.execute(f"select rowid, {column.column} from {column.table} "
                                         f"where {column.column} is not null"):
            if isinstance(value, str) and not (value and value.startswith(column.prefix)):
                continue
            found.append((column, rowid, value))
    return found


def opens(column: rekey.SealedColumn, value: object, context: bytes, key: bytes) -> bool:
    try:
        if column.context_column is not None:
            BytesSealer(key, column.purpose).open(bytes(value), context)  # type: ignore[arg-type]
        else:
            Sealer(key, column.purpose).open(str(value)[len(column.prefix):])
        return True
    except Exception:
        return False


def fill(app: Flask) -> dict[str, object]:
    """Complaints with PINs, a draft left half typed, SMS, a call-back, a recording."""
    services = app.extensions["migrantline"]
    client = app.test_client()
    filer = Phone(client)
    reference = reference_in(file_report(filer, pin="4321"))
    drafting = Phone(client)
    start_report(drafting, "en")
    drafting.press(choice("report_danger", "no"))  # then the call drops: a sealed draft
    texter = Texter(app)
    texter.send("help")
    assert services.callbacks.request("+9779812340000", "twilio", "CA-rotate-1")
    row = services.store.db().execute("select id from complaints where reference = ?",
                                      [reference]).fetchone()
    services.complaints.act(row[0], "note", None, "operator:test", "called her brother back")
    recordings = services.recordings
    recordings_db.insert(services.store, {
        "key": "rec-rotate-1", "complaint_id": row[0], "reference": reference,
        "provider": "twilio", "url_sealed": recordings.url_sealer.seal("https://x.test/r/1"),
        "created_at": time.time()})
    (claimed,) = recordings_db.claim(services.store, time.time(), 60, "tok", 10)
    assert recordings_db.finish(services.store, claimed["id"], "tok", {
        "status": "stored", "audio_sealed": recordings.audio_sealer.seal(AUDIO, b"rec-rotate-1"),
        "bytes": len(AUDIO), "mimetype": "audio/wav", "stored_at": time.time(),
        "updated_at": time.time()})
    services.store.flush()
    return {"reference": reference, "filer": filer.number, "drafting": drafting.number,
            "recording": claimed["id"], "texter": texter.number, "complaint_id": row[0]}


def rotate(tmp_path: Path, key: str = TEST_SECRET, new: str = NEW_KEY) -> tuple[int, str]:
    env = {"MIGRANTLINE_DATA_DIR": str(tmp_path / "var"), "MIGRANTLINE_SECRET_KEY": key}
    result = CliRunner().invoke(main, ["keys", "rotate", "--yes", "--new-key-stdin"],
                                input=new + "\n", env=env)
    return result.exit_code, result.output


def test_rotate_reseals_everything_and_the_old_key_opens_nothing(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    filed = fill(app)
    before = sealed_values(app)
    tables = {c.table for c, _, _ in before}
    assert tables >= {"complaints", "complaint_events", "outbox", "callbacks", "ussd_sessions",
                      "voice_recordings"}, tables
    old_tokens = [v for _, _, v in before if isinstance(v, str) and len(v) > 40]
    app.extensions["migrantline"].store.close()

    code, output = rotate(tmp_path)
    assert code == 0, output
    assert "complaints.description_sealed: 1 re-sealed" in output  # progress, per column
    assert "Set MIGRANTLINE_SECRET_KEY to the new key" in output

    with pytest.raises(settings.SecretKeyError, match="not the key the data"):
        make_app(tmp_path)  # the old key: refused, nothing sealed with it any more
    served = subprocess.run([str(BIN), "serve", "--port", str(free_port())], cwd=ROOT,
                            env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
    assert served.returncode == 1 and "not the key the data" in served.stderr
    app = make_app(tmp_path, MIGRANTLINE_SECRET_KEY=NEW_KEY)
    services = app.extensions["migrantline"]
    client = app.test_client()
    try:
        # The complaint reads back, for operators and for the caller (PIN from another phone).
        row = services.complaints.get(int(filed["complaint_id"]))
        shown = services.complaints.reveal(row)
        assert shown["description"] == DESCRIPTION and shown["phone"] == filed["filer"]
        other = Phone(client)
        follow(other, str(filed["reference"]))
        assert "Received" in other.press("4321")
        # The filing phone is still recognised (its pseudonym was recomputed): status
        # without a PIN, and the language it chose is remembered.
        filer = Phone(client, str(filed["filer"]))
        assert "Received" in follow(filer, str(filed["reference"]))
        assert services.store.phone_language(services.ussd.hasher.key(filer.number)) == "en"
        # What cannot be re-keyed is gone, not left under the old key: a phone whose number
        # is held nowhere (a draft half typed, its language) starts afresh. The recording plays.
        drafting = Phone(client, str(filed["drafting"]))
        assert "Continue" not in drafting.dial()
        assert services.recordings.audio(int(filed["recording"]))[0] == AUDIO
        assert services.ussd.sealer.open(services.store.outbox()[0]["to_sealed"])
        notes = [e for e in services.complaints.history(int(filed["complaint_id"]))
                 if e["kind"] == "note"]
        assert notes[0]["detail"] == "called her brother back"
        # The old key opens nothing stored; the old ciphertexts are gone from the files.
        after = sealed_values(app)
        assert len(after) >= len(before) - 1  # (a redial may have ended the old session)
        conn = services.store.db().conn
        for column, rowid, value in after:
            context = b""
            if column.context_column:
                context = str(conn.execute(
                    f"select {column.context_column} from {column.table} where rowid = ?",
                    [rowid]).fetchone()[0]).encode()
            assert opens(column, value, context, NEW_KEY.encode()), (column, rowid)
            assert not opens(column, value, context, TEST_SECRET.encode()), (column, rowid)
        old = PhoneHasher(TEST_SECRET.encode()).key(str(filed["filer"]))
        assert conn.execute("select count(*) from phones where key = ?", [old]).fetchone()[0] == 0
    finally:
        services.store.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "var").glob("migrantline.db*"))
    left = [t for t in old_tokens if t.encode() in raw]
    assert not left, f"{len(left)} old ciphertexts still in the data files"


def test_a_rotation_with_the_wrong_key_changes_nothing(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    fill(app)
    app.extensions["migrantline"].store.close()
    code, output = rotate(tmp_path, key="wrong-" + TEST_SECRET[6:])
    assert code == 1 and "not the key the data" in output
    code, output = rotate(tmp_path, new="aaaa")
    assert code == 1 and "too weak" in output
    app = make_app(tmp_path)  # the old key still opens everything
    row = app.extensions["migrantline"].complaints.get(1)
    assert app.extensions["migrantline"].complaints.reveal(row)["description"] == DESCRIPTION
    app.extensions["migrantline"].store.close()


def test_a_key_kept_in_the_data_folder_is_replaced_there(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_SECRET_KEY=None)
    fill(app)
    app.extensions["migrantline"].store.close()
    old = (tmp_path / "var" / "secret_key").read_text()
    env = {"MIGRANTLINE_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(main, ["keys", "rotate", "--yes"], env=env)
    assert result.exit_code == 0, result.output
    new = (tmp_path / "var" / "secret_key").read_text()
    assert new != old and new in result.output  # printed, and where the old one was
    assert not (tmp_path / "var" / "secret_key.new").exists()
    app = make_app(tmp_path, MIGRANTLINE_SECRET_KEY=None)
    row = app.extensions["migrantline"].complaints.get(1)
    assert app.extensions["migrantline"].complaints.reveal(row)["description"] == DESCRIPTION
    app.extensions["migrantline"].store.close()
