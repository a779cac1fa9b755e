"""The ``migrantline`` command as field staff and operators run it: serve, simulate, health."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from . import databases
from .conftest import DEMO_CONTENT, ROOT, TEST_SECRET

BIN = Path(sys.executable).parent / "migrantline"


SERVER_DATA: dict[str, Path] = {}  # each test server's data folder, by base URL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRANTLINE_")}
    env.update({"MIGRANTLINE_DATA_DIR": str(tmp_path / "var"),
                "MIGRANTLINE_CONTENT_DIR": str(DEMO_CONTENT),
                "MIGRANTLINE_SECRET_KEY": TEST_SECRET,
                **databases.for_folder(tmp_path / "var")})
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real service under its production server, on a loopback port."""
    tmp = tmp_path_factory.mktemp("serve")
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--demo", "--port", str(port), "--workers", "2"],
                            cwd=ROOT, env=env_for(tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    SERVER_DATA[base] = tmp / "var"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    output = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"server did not start: {output}")
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)  # drains its output while it stops


def simulate(base: str, tmp_path: Path, keys: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "simulate", "--url", base, *args], input=keys,
                          capture_output=True, text=True, env=env_for(tmp_path), timeout=60,
                          cwd=ROOT)


def test_healthz_under_the_production_server(server: str) -> None:
    with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
        assert response.status == 200
        health = json.load(response)
    assert health["status"] == "ok"
    assert len(health["content_version"]) == 12
    assert health["database"]["journal_mode"] == ("postgresql" if databases.on_postgres()
                                                  else "wal")
    shipped = [lang["code"] for lang in yaml.safe_load(
        (DEMO_CONTENT / "site.yaml").read_text("utf-8"))["languages"]]
    assert health["content"]["languages"] == shipped


def test_simulate_walks_a_session(server: str, tmp_path: Path) -> None:
    result = simulate(server, tmp_path, "1\n1\n3\n98\n00\n", "--phone", "+9779800000777")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "English" in out and "Before you go" in out
    assert "Get a written contract" in out or "contract" in out.lower()
    assert "GSM-7" in out and "UCS-2" in out  # the language list is UCS-2, English is not
    assert out.count("+-") >= 6


def test_simulate_with_lang_picks_the_language(server: str, tmp_path: Path) -> None:
    result = simulate(server, tmp_path, "1\n", "--lang", "ne", "--phone", "+9779800000778")
    assert result.returncode == 0, result.stderr
    assert "(language ne)" in result.stdout
    assert "माइग्रेन्टलाइन" in result.stdout


SITE = yaml.safe_load((DEMO_CONTENT / "site.yaml").read_text("utf-8"))
MAIN = yaml.safe_load((DEMO_CONTENT / "nodes" / "main" / "main.yaml").read_text("utf-8"))


# The first language on both engines; the others differ only in content, not in what the
# store does, so the PostgreSQL pass does not repeat them (``engine_independent``).
@pytest.mark.parametrize("lang", [
    pytest.param(lang["code"], marks=[pytest.mark.engine_independent] if n else [])
    for n, lang in enumerate(SITE["languages"])])
def test_simulate_walks_each_shipped_language(server: str, tmp_path: Path, lang: str) -> None:
    """`simulate --lang` picks any shipped language, wherever it is on the list, and the
    main menu then opens in it: its title and the first option's label in that language."""
    phone = f"+97798{int.from_bytes(lang.encode(), 'big') % 10**8:08d}"
    result = simulate(server, tmp_path, "1\n0\n", "--lang", lang, "--phone", phone)
    assert result.returncode == 0, result.stderr
    assert f"(language {lang})" in result.stdout
    title = MAIN["title"].get(lang, MAIN["title"]["en"])
    assert title in result.stdout, result.stdout[-600:]


def test_simulate_says_what_to_do_when_the_service_is_down(tmp_path: Path) -> None:
    result = simulate(f"http://127.0.0.1:{free_port()}", tmp_path, "1\n")
    assert result.returncode == 1
    assert "migrantline serve" in result.stderr


def test_simulate_a_voice_call(server: str, tmp_path: Path) -> None:
    """A call as Twilio places it: the language menu, English, the main menu, silence twice."""
    result = simulate(server, tmp_path, "1\n1\n\n\n", "--channel", "voice",
                      "--phone", "+9779800000779")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The language menu is each language in its own voice (the welcome is for a caller
    # whose language is known); then "for help now, press 9 9" once.
    assert "For English, press" in out and out.count("For help now, press") == 1
    assert "Before you go" in out and "press" in out
    assert "We did not hear a key." in out and "Goodbye." in out
    assert "(the call ends)" in out


def test_simulate_unknown_channel_is_a_usage_error(tmp_path: Path) -> None:
    usage = subprocess.run([str(BIN), "simulate", "--channel", "fax"], capture_output=True,
                           text=True, env=env_for(tmp_path), timeout=30)
    assert usage.returncode == 2


def test_serve_refuses_broken_content(tmp_path: Path) -> None:
    broken = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, broken)
    (broken / "nodes" / "main" / "main.yaml").write_text("id: main\ntype: menu\ntitle: [\n")
    result = subprocess.run([str(BIN), "serve", "--port", str(free_port())], capture_output=True,
                            text=True, env=env_for(tmp_path, MIGRANTLINE_CONTENT_DIR=str(broken)),
                            timeout=30, cwd=ROOT)
    assert result.returncode == 1
    assert "migrantline content check" in result.stderr


def test_healthz_reports_content_that_could_not_load(tmp_path: Path) -> None:
    from .conftest import make_app

    broken = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, broken)
    (broken / "site.yaml").write_text("languages: nope\n")
    app = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(broken))
    client = app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json["status"] == "error"
    assert "site.yaml" in health.json["content"]["error"]
    answer = client.post("/ussd/africastalking", data={"sessionId": "a", "phoneNumber": "+1"})
    assert answer.status_code == 200
    assert answer.get_data(as_text=True).startswith("END Sorry")


def test_healthz_reports_the_agency_registry(server: str) -> None:
    with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
        health = json.load(response)
    assert health["agencies"]["agencies"] >= 150
    assert len(health["agencies"]["version"]) == 12


def test_simulate_sms_shows_the_replies_the_outbox_will_send(server: str, tmp_path: Path) -> None:
    env = env_for(tmp_path, MIGRANTLINE_DATA_DIR=str(SERVER_DATA[server]),
                  **databases.for_folder(SERVER_DATA[server]))  # the outbox it reads
    result = subprocess.run([str(BIN), "simulate", "--channel", "sms", "--url", server,
                             "--phone", "+9779800000991"], input="language\n1\nagency sunrise\n",
                            capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "English" in out and "العربية" in out  # the language list, by SMS
    assert "Before you go" in out  # English main menu
    assert "Sunrise Himal" in out
    assert "SMS · " in out and "UCS-2" in out and "GSM-7" in out


def test_every_worker_serves_content_after_a_fresh_start(server: str) -> None:
    """Both workers load the tree and the agency registry into one new database at once."""
    for _ in range(30):  # the server spreads requests over its workers
        with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
            health = json.load(response)
        assert health["status"] == "ok", health["content"]
