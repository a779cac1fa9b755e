"""Settings are read once, typed, and a bad value stops the start with the setting's name."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ussd_app import settings
from ussd_app.settings import SETTINGS, SettingError

from .conftest import DEMO_CONTENT, ROOT, TEST_SECRET, make_app

BIN = Path(sys.executable).parent / "migrantline"
README = (ROOT / "README.md").read_text()
SWITCHES = [s for s in SETTINGS if s.parse is settings.switch]
BAD = [  # (setting, value): words, signs, exponents, other scripts' digits, out of bounds
    ("MIGRANTLINE_RESUME_MINUTES", "five"), ("MIGRANTLINE_RESUME_MINUTES", "-1"),
    ("MIGRANTLINE_DRAFT_MINUTES", "1e3"), ("MIGRANTLINE_SESSION_FLUSH_MS", "١٠٠"),
    ("MIGRANTLINE_SMS_MAX_SEGMENTS", "0"), ("MIGRANTLINE_LOGIN_MAX_FAILURES", "10" * 20),
    ("MIGRANTLINE_CONTENT_POLL_SECONDS", "nan"), ("MIGRANTLINE_SYNC_INTERVAL_SECONDS", "inf"),
    ("MIGRANTLINE_OUTBOX_LEASE_SECONDS", "0"), ("MIGRANTLINE_BODY_TIMEOUT_SECONDS", "-2"),
    ("MIGRANTLINE_DEMO", "maybe"), ("MIGRANTLINE_OUTBOX_WORKER", "enabled"),
    ("MIGRANTLINE_SMS_PROVIDER", "pigeon"), ("MIGRANTLINE_LOG_LEVEL", "LOUD"),
    ("MIGRANTLINE_TTS_ONLINE", "sometimes"), ("MIGRANTLINE_VOICE_CALLBACK", "never"),
    ("MIGRANTLINE_AUDIO_FORMAT", "ogg"),
]


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """``command``'s exit status and stderr; a server that did start is stopped, workers too."""
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
    return proc.returncode, stderr


def readme_defaults() -> dict[str, str]:
    """The README settings table: every variable of a row -> its default cell."""
    found = {}
    for row in re.findall(r"^\| (`[A-Z_0-9]+`.*) \|$", README, re.M):
        names, _, default = (cell.strip() for cell in row.split(" | "))
        for name in re.findall(r"`([A-Z_0-9]+)`", names):
            found[name] = default
    return found


def test_every_setting_is_one_typed_attribute() -> None:
    config = settings.load(environ={})
    assert isinstance(config.data_dir, Path) and config.data_dir.is_absolute()
    assert config.draft_minutes == 60 and isinstance(config.draft_minutes, int)
    assert config.content_poll_seconds == 2.0 and isinstance(config.content_poll_seconds, float)
    assert config.prompts_render is True and config.demo is False
    assert config.secret_key is None and config.central_pubkey is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.demo = True  # type: ignore[misc]
    names = [f.name for f in dataclasses.fields(config) if "setting" in f.metadata]
    assert names == [settings.attribute(s.name) for s in SETTINGS]
    assert len(set(s.name for s in SETTINGS)) == len(SETTINGS)


def test_defaults_equal_the_readme_table() -> None:
    documented = readme_defaults()
    for setting in SETTINGS:
        cell = documented[setting.name]
        if setting.default is None:  # "unset", "the provider's (...)", "made once in the data dir"
            assert not cell.startswith("`"), (setting.name, cell)
        else:
            assert cell == f"`{setting.default}`", (setting.name, cell)
        assert setting.read(setting.default) == settings.load(environ={}).named(setting.name)


def test_every_switch_accepts_the_same_words() -> None:
    assert {s.name for s in SWITCHES} == {
        "MIGRANTLINE_PROMPTS_RENDER", "MIGRANTLINE_INSECURE_OPEN_WEBHOOKS", "MIGRANTLINE_DEMO",
        "MIGRANTLINE_OUTBOX_WORKER", "MIGRANTLINE_BACKGROUND", "MIGRANTLINE_SMTP_STARTTLS"}
    for setting in SWITCHES:
        for word in ("on", "1", "true", "yes", "ON", " Yes ", "True"):
            assert settings.load(environ={setting.name: word}).named(setting.name) is True
        for word in ("off", "0", "false", "no", "OFF", "No"):
            assert settings.load(environ={setting.name: word}).named(setting.name) is False
        with pytest.raises(SettingError, match=f"{setting.name} must be on or off"):
            settings.load(environ={setting.name: "enabled"})


def test_settings_that_can_be_off_take_the_switch_words_for_it() -> None:
    for name in ("MIGRANTLINE_TTS_ONLINE", "MIGRANTLINE_VOICE_CALLBACK"):
        for word in ("off", "0", "false", "no", "OFF", " No "):
            assert settings.load(environ={name: word}).named(name) == "off"
    for word in ("on", "1", "true", "yes", "auto", "AUTO"):  # gTTS when reachable
        assert settings.load(environ={"MIGRANTLINE_TTS_ONLINE": word}).tts_online == "auto"
    assert settings.load(environ={"MIGRANTLINE_VOICE_CALLBACK": "Always"}).voice_callback \
        == "always"
    with pytest.raises(SettingError, match="MIGRANTLINE_VOICE_CALLBACK must be one of missed"):
        settings.load(environ={"MIGRANTLINE_VOICE_CALLBACK": "yes"})  # missed or always?


def test_yes_turns_the_outbox_worker_on_as_it_does_every_switch(tmp_path: Path) -> None:
    # It took only on, 1 and true (not yes, nor " on"), unlike every other switch.
    app = make_app(tmp_path, MIGRANTLINE_OUTBOX_WORKER="yes", MIGRANTLINE_SMS_PROVIDER="kannel",
                   KANNEL_SENDSMS_URL="http://127.0.0.1:9/cgi-bin/sendsms",
                   KANNEL_USERNAME="u", KANNEL_PASSWORD="p")
    try:
        jobs = app.test_client().get("/healthz").get_json()["jobs"]
        assert "outbox-worker" in {j["name"] for j in jobs}
    finally:
        app.extensions["migrantline"].store.close()


@pytest.mark.parametrize(("name", "value"), BAD)
def test_a_bad_value_stops_create_app_naming_the_setting(tmp_path: Path, name: str,
                                                         value: str) -> None:
    with pytest.raises(SettingError) as refused:
        make_app(tmp_path, **{name: value})
    message = str(refused.value)
    assert message.startswith(f"{name} must be ") and repr(value) in message
    assert not (tmp_path / "var").exists()  # refused before anything was written


@pytest.mark.parametrize(("name", "value", "accepts"), [
    ("MIGRANTLINE_RESUME_MINUTES", "soon", "a whole number from 0 to"),
    ("MIGRANTLINE_HEADER_TIMEOUT_SECONDS", "0", "a number from 0.001 to 3600"),
    ("MIGRANTLINE_PROMPTS_RENDER", "sure", "on or off"),  # (--demo sets MIGRANTLINE_DEMO)
])
def test_serve_refuses_a_bad_value_in_one_line(tmp_path: Path, name: str, value: str,
                                               accepts: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "MIGRANTLINE_DATA_DIR": str(tmp_path / "var"),
           "MIGRANTLINE_CONTENT_DIR": str(DEMO_CONTENT), "MIGRANTLINE_SECRET_KEY": TEST_SECRET,
           name: value}
    returncode, stderr = run([str(BIN), "serve", "--demo", "--port", "9"], env, tmp_path)
    assert returncode == 1, stderr
    assert f"{name} must be {accepts}" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "var").exists()


def test_a_blank_value_is_the_default() -> None:
    config = settings.load(environ={"MIGRANTLINE_DRAFT_MINUTES": " ", "MIGRANTLINE_DEMO": "",
                                    "MIGRANTLINE_PROMPTS_RENDER": ""},
                           overrides={"MIGRANTLINE_BASE_URL": None})
    assert config.draft_minutes == 60 and config.demo is False and config.prompts_render
    assert config.base_url == "http://127.0.0.1:5000"


def test_the_app_reads_the_settings_once_and_keeps_app_config(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_LOGIN_IP_MAX_FAILURES=3, MIGRANTLINE_LOG_LEVEL="debug")
    try:
        config = app.extensions["migrantline"].config
        assert isinstance(config, settings.Settings)
        assert config.login_ip_max_failures == 3 and config.log_level == "DEBUG"
        assert app.config["MIGRANTLINE_LOGIN_IP_MAX_FAILURES"] == 3  # as given, by name
        assert app.config["MIGRANTLINE_DATA_DIR"] == str(tmp_path / "var")
        assert settings.of(config) is config
        assert settings.of(app.config) == config  # a mapping is read the same way
    finally:
        app.extensions["migrantline"].store.close()


def test_every_command_refuses_a_bad_value_in_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "MIGRANTLINE_DATA_DIR": str(tmp_path / "var"),
           "MIGRANTLINE_OUTBOX_MAX_ATTEMPTS": "many"}
    returncode, stderr = run([str(BIN), "outbox", "status"], env, tmp_path)
    assert returncode == 1 and "Traceback" not in stderr
    assert "MIGRANTLINE_OUTBOX_MAX_ATTEMPTS must be a whole number from 1 to 1000, not 'many'" \
        in stderr
