"""Sessions consistent on one worker, several workers and several nodes (issue 14).

A session's start (language, resume offer, content version) is the one input
not in the provider's resent text. It used to wait in one worker's buffer, so
another worker that got a later hop computed a start of its own: tried with
``serve --workers 2``, 14 of 40 fast redials got the Arabic main menu or
another wrong screen. Now the start is committed before hop 1 is answered
(the first insert wins, the loser replays the winner's start), progress is
ordered by the number of inputs and a language choice is written in its hop.

These drive real ``migrantline serve`` processes over HTTP at machine speed,
then the store's own writes raced and replayed out of order.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import replace
from itertools import count
from pathlib import Path

import pytest

from ussd_app.store import FreshStarts, SessionRow, privacy

from .conftest import DEMO_CONTENT, ROOT, Phone, make_app
from .http_client import HttpClient, Response
from .test_cli import BIN, env_for, free_port
from .test_complaints import file_report, reference_in
from .test_outbox_once import Kannel, kannel  # noqa: F401 - the fixture
from .test_ussd_http import LANG_KEYS, TREE, label, title

TOKEN = "consistency-token"
OFFER = "Continue where you stopped?"
_numbers = count(1)


def serve(tmp: Path, workers: int, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port), "--workers", str(workers)], cwd=ROOT,
        env=env_for(tmp, MIGRANTLINE_WEBHOOK_TOKEN=TOKEN, MIGRANTLINE_PROMPTS_RENDER="off",
                    MIGRANTLINE_CONTENT_DIR=str(DEMO_CONTENT), **env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 30
    while not _answers(port):
        if proc.poll() is not None or time.time() > deadline:
            os.killpg(proc.pid, signal.SIGTERM)
            output = proc.communicate(timeout=30)[0].decode()
            pytest.fail(f"server did not start: {output}")
        time.sleep(0.2)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)  # drains its output while it stops


def _answers(port: int) -> bool:
    """Serving: /healthz answers (its verdict is not what these tests are about)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz")
        return conn.getresponse().status in (200, 503)
    except OSError:
        return False


class NetPhone:
    """A handset whose hops go to the given ports in turn: any hop on any node."""

    def __init__(self, ports: list[int], turn: int = 0) -> None:
        self.ports, self.turn = ports, turn
        self.number = f"+97797{next(_numbers):08d}"
        self.session, self.inputs = "", []  # type: tuple[str, list[str]]
        self.wrong: list[str] = []

    def dial(self) -> str:
        self.session = f"ATUid_cons_{self.number[-8:]}_{time.monotonic_ns()}"
        self.inputs = []
        return self.hop("")

    def press(self, key: str) -> str:
        self.inputs.append(key)
        return self.hop("*".join(self.inputs))

    def hop(self, text: str) -> str:
        port = self.ports[self.turn % len(self.ports)]
        self.turn += 1
        body = urllib.parse.urlencode({"sessionId": self.session, "serviceCode": "*384*1234#",
                                       "phoneNumber": self.number, "networkCode": "99999",
                                       "text": text})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            conn.request("POST", f"/ussd/africastalking?token={TOKEN}", body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            assert response.status == 200
            return response.read().decode()
        finally:
            conn.close()

    def expect(self, body: str, *needles: str) -> None:
        if not all(n in body for n in needles):
            self.wrong.append(f"{self.session} {'*'.join(self.inputs)!r}: {body[:80]!r}")


def walk_and_redial(phone: NetPhone, rounds: int) -> int:
    """The issue's walk: English, an article, hang up, redial at once, "2 Start again"."""
    phone.expect(phone.dial(), "English", "العربية")
    phone.expect(phone.press(LANG_KEYS["en"]), title("main", "en"))
    for _ in range(rounds):
        phone.expect(phone.press("1"), title("before_you_go", "en"))
        phone.expect(phone.press("3"), title("bg_contract", "en"))
        phone.expect(phone.dial(), OFFER)  # dropped at the article: offered to continue
        phone.expect(phone.press("2"), title("main", "en"), label("before_you_go", "en"))
    return rounds


def test_fast_redials_on_two_workers_never_get_a_wrong_screen(tmp_path: Path) -> None:
    """The issue's reproduction, on ``serve --workers 2`` (each hop a new connection)."""
    proc, port = serve(tmp_path, workers=2)
    try:
        phones = [NetPhone([port]) for _ in range(15)]
        redials = sum(walk_and_redial(p, rounds=3) for p in phones)
    finally:
        stop(proc)
    assert redials >= 45
    assert [w for p in phones for w in p.wrong] == []


@pytest.mark.postgres_only
def test_two_nodes_on_one_database_any_hop_on_any_node(tmp_path: Path, database: str) -> None:
    """Two nodes (own data folders and ports; one PostgreSQL, one key, one content), hops
    alternating between them at machine speed, several phones at once."""
    nodes = [serve(tmp_path / name, workers=1, MIGRANTLINE_DATABASE_URL=database)
             for name in ("a", "b")]
    ports = [port for _, port in nodes]
    try:
        phones = [NetPhone(ports, turn=i) for i in range(8)]
        threads = [threading.Thread(target=walk_and_redial, args=(p, 4)) for p in phones]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        # A language changed on node A is the next session's language on node B.
        on_a, on_b = NetPhone([ports[0]]), NetPhone([ports[1]])
        on_a.dial()
        on_a.press(LANG_KEYS["en"])
        key = str([o.target for o in TREE.nodes["main"].options].index("language") + 1)
        if key not in on_a.hop("*".join(on_a.inputs)):
            on_a.press("98")
        assert "العربية" in on_a.press(key)
        assert title("main", "fr") in on_a.press(LANG_KEYS["fr"])
        on_b.number = on_a.number
        assert title("main", "fr") in on_b.dial()
    finally:
        for proc, _ in nodes:
            stop(proc)
    assert not any(t.is_alive() for t in threads)
    assert [w for p in phones for w in p.wrong] == []


class Alternating(HttpClient):
    """Each request to the next node in turn: no stickiness at all."""

    def __init__(self, ports: list[int], token: str, turn: int = 0) -> None:
        super().__init__(ports[0], token)
        self.ports, self.turn = ports, turn

    def post(self, path: str, data: dict[str, str],
             headers: dict[str, str] | None = None) -> Response:
        self.port = self.ports[self.turn % len(self.ports)]
        self.turn += 1
        return super().post(path, data, headers)


@pytest.mark.postgres_only
def test_filings_hopping_between_two_nodes_send_each_receipt_once(
        tmp_path: Path, database: str, kannel: Kannel) -> None:  # noqa: F811 - the fixture
    """Six callers file at once, each hop on the other node; both nodes run an outbox
    worker against one SMS gateway: every receipt reaches its caller exactly once."""
    sms = {"MIGRANTLINE_SMS_PROVIDER": "kannel", "KANNEL_SENDSMS_URL": kannel.url,
           "KANNEL_USERNAME": "u", "KANNEL_PASSWORD": "p", "MIGRANTLINE_OUTBOX_WORKER": "on"}
    nodes = [serve(tmp_path / name, workers=1, MIGRANTLINE_DATABASE_URL=database, **sms)
             for name in ("a", "b")]
    ports = [port for _, port in nodes]
    numbers = [f"+9779811{next(_numbers):06d}" for _ in range(6)]
    references: dict[str, str] = {}
    errors: list[BaseException] = []

    def caller(i: int, number: str) -> None:
        try:
            phone = Phone(Alternating(ports, TOKEN, turn=i), number)  # type: ignore[arg-type]
            references[number] = reference_in(file_report(phone))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=caller, args=(i, n)) for i, n in enumerate(numbers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == [] and len(set(references.values())) == len(numbers)
        deadline = time.time() + 30
        while {r.get("to") for r in list(kannel.received)} < set(numbers) \
                and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # a second send by the other node's worker would have arrived by now
    finally:
        for proc, _ in nodes:
            stop(proc)
    sent = [(r.get("to"), r.get("text")) for r in list(kannel.received)]
    assert {to for to, _ in sent} == set(numbers)
    assert [m for m in sent if sent.count(m) > 1] == []  # nothing sent twice
    for number, reference in references.items():  # each caller's receipt names their case
        texts = [text or "" for to, text in sent if to == number]
        assert any(f"{reference[:4]} {reference[4:]}" in t for t in texts), (number, texts)


# ------------------------------------------------------------------ the store's writes


def _row(session_id: str, start: str, **fields: object) -> SessionRow:
    now = time.time()
    return replace(SessionRow(id=session_id, phone_key="pk-1", started_at=now, updated_at=now,
                              version="v1", start=start), **fields)  # type: ignore[arg-type]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list]:  # type: ignore[type-arg]
    """Two workers' stores on one database."""
    apps = [make_app(tmp_path), make_app(tmp_path)]
    yield [app.extensions["migrantline"].store for app in apps]
    for app in apps:
        app.extensions["migrantline"].store.close()


def test_racing_starts_one_wins_and_both_replay_it(workers: list) -> None:  # type: ignore[type-arg]
    """Two workers insert hop 1 of the same session at once, each with its own start."""
    for sid, got in _races("race", lambda i, sid: workers[i].start_session(
            _row(sid, start=f'{{"worker": {i}}}'))):
        stored = workers[0].session(sid)
        assert got[0].start == got[1].start == stored.start
        assert stored.start in ('{"worker": 0}', '{"worker": 1}')


def _races(prefix: str, call: Callable[[int, str], SessionRow]
           ) -> Iterator[tuple[str, dict[int, SessionRow]]]:
    """20 sessions, each begun by ``call(0, id)`` and ``call(1, id)`` released at once from
    two threads; each session's id and what each call returned."""

    def run(barrier: threading.Barrier, got: dict[int, SessionRow], i: int, sid: str) -> None:
        barrier.wait()
        got[i] = call(i, sid)

    for n in range(20):
        sid, barrier, got = f"{prefix}-{n}", threading.Barrier(2), {}  # type: ignore[var-annotated]
        threads = [threading.Thread(target=run, args=(barrier, got, i, sid)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        yield sid, got


def test_an_old_hop_written_late_never_undoes_a_newer_one(workers: list) -> None:  # type: ignore[type-arg]
    first, second = workers
    row = first.start_session(_row("late", start="{}"))
    second.save_session(replace(row, last_text="1*2*3", inputs=3, resumable=True))
    first.save_session(replace(row, last_text="1*2", inputs=2, resumable=True))  # late
    stored = first.session("late")
    assert (stored.last_text, stored.inputs) == ("1*2*3", 3)


def test_ended_is_never_unset(workers: list) -> None:  # type: ignore[type-arg]
    first, second = workers
    row = first.start_session(_row("ends", start="{}"))
    second.save_session(replace(row, last_text="", inputs=4, ended=True))
    first.save_session(replace(row, last_text="1*2*3*4", inputs=4, resumable=True))  # retry
    assert second.session("ends").ended


def test_a_node_60_seconds_behind_changes_nothing(tmp_path: Path) -> None:
    """Hops alternate between a worker on time and one whose clock is 60 s behind: every
    screen is right, every hop's progress is kept, the redial is offered the session."""
    on_time, behind = make_app(tmp_path), make_app(tmp_path)
    try:
        ussd = [on_time.extensions["migrantline"].ussd, behind.extensions["migrantline"].ussd]
        session, number = "skewed-1", "+9779700000999"
        inputs: list[str] = []
        screens = []
        for i, key in enumerate(["", LANG_KEYS["en"], "1", "3"]):
            inputs += [key] if key else []
            answer = ussd[i % 2].answer(session, number, "*".join(inputs),
                                        now=time.time() - 60 * (i % 2))
            screens.append(answer.text if answer else "")
        assert title("main", "en") in screens[1] and title("bg_contract", "en") in screens[3]
        stored = on_time.extensions["migrantline"].store.session(session)
        assert stored.inputs == 3 and stored.resumable and not stored.ended
        offer = Phone(behind.test_client(), number=number).dial()
        assert OFFER in offer
    finally:
        for app in (on_time, behind):
            app.extensions["migrantline"].store.close()


def test_a_hop_computed_before_an_erasure_writes_nothing_back(workers: list) -> None:  # type: ignore[type-arg]
    """Worker two erases the phone while worker one is mid-hop: that hop's write (dated
    before the erasure) is refused by ``erased_phones``; a later session is kept."""
    first, second = workers
    row = first.start_session(_row("erased", start="{}"))
    erased_at = time.time()
    privacy.erase_phones(second, ["pk-1"], erased_at)
    assert first.session("erased") is None
    first.save_session(replace(row, updated_at=erased_at - 0.5, last_text="1*2", inputs=2,
                               resumable=True))
    first.set_phone_language("pk-1", "fr", erased_at - 0.5)
    assert first.session("erased") is None and first.phone_language("pk-1") is None
    # a language chosen in that hop, written with its progress (one statement on PostgreSQL)
    first.save_session(replace(row, updated_at=erased_at - 0.5, last_text="1*2*3", inputs=3),
                       "ar")
    assert first.session("erased") is None and first.phone_language("pk-1") is None
    later = first.start_session(_row("after", start="{}", started_at=erased_at + 1,
                                     updated_at=erased_at + 1))
    assert first.session("after") == later


def test_progress_of_a_row_gone_mid_session_is_written_again(workers: list) -> None:  # type: ignore[type-arg]
    """Progress updates the row its start inserted; if the row is gone (purged while the
    caller was still on the line), the hop's write puts it back, as an upsert would."""
    first, second = workers
    row = first.start_session(_row("purged", start="{}"))
    second.purge_sessions(time.time() + 1)
    assert first.session("purged") is None
    first.save_session(replace(row, updated_at=time.time(), last_text="1*2", inputs=2,
                               resumable=True))
    stored = second.session("purged")
    assert (stored.last_text, stored.inputs, stored.resumable) == ("1*2", 2, True)


def test_a_language_is_written_with_the_progress_of_its_hop(workers: list) -> None:  # type: ignore[type-arg]
    first, second = workers
    row = first.start_session(_row("lang", start="{}"))
    first.save_session(replace(row, last_text="1", inputs=1), "fr")
    assert second.phone_language("pk-1") == "fr" and second.session("lang").inputs == 1
    second.purge_sessions(time.time() + 1)  # its row gone: the language is still written
    first.save_session(replace(row, updated_at=time.time(), last_text="1*2", inputs=2), "ar")
    assert second.phone_language("pk-1") == "ar" and second.session("lang").inputs == 2
    # an older hop's write, late: neither its progress nor the row's order changes
    first.save_session(replace(row, last_text="1", inputs=1), "fr")
    assert second.session("lang").inputs == 2


# ------------------------------------------------------------------ hop 1's one round trip

STARTS = FreshStarts({"en": ('{"lang": "en", "node": "main"}', "main", "main"),
                      "ar": ('{"lang": "ar", "node": "main"}', "main", "main")},
                     ('{"lang": null, "node": "language"}', "language", "language"))


def _begin(store, session_id: str, phone_key: str = "pk-1",  # type: ignore[no-untyped-def]
           starts: FreshStarts = STARTS, at: float | None = None):
    at = time.time() if at is None else at
    return store.begin_session(starts, session_id, phone_key, at, "v1", at - 3600)


def test_hop_one_starts_in_the_phones_language_and_commits_it(workers: list) -> None:  # type: ignore[type-arg]
    """The start is picked by the phone's language in the statement that reads it, and is
    in the database for every other worker before hop 1 is answered."""
    first, second = workers
    started, lang, latest = _begin(first, "new-phone", phone_key="pk-new")
    assert (lang, latest) == (None, None) and started.node == "language"
    assert second.session("new-phone") == started
    assert (started.start, started.path, started.version, started.inputs) == (
        STARTS.default[0], "language", "v1", 0)
    assert not started.resumable and not started.ended
    second.set_phone_language("pk-ar", "ar")
    started, lang, _ = _begin(first, "arabic", phone_key="pk-ar")
    assert lang == "ar" and started.start == STARTS.by_lang["ar"][0] and started.node == "main"
    assert second.session("arabic") == started
    second.set_phone_language("pk-gone", "fr")  # a language this content does not offer
    started, lang, _ = _begin(first, "french", phone_key="pk-gone")
    assert lang == "fr" and started.start == STARTS.default[0]


def test_a_resumable_session_is_left_to_the_caller_to_replay(workers: list) -> None:  # type: ignore[type-arg]
    """Only a session the caller may resume needs the replay: nothing is inserted, the
    phone's language and that session come back; an ended one is not offered."""
    first, second = workers
    old = first.start_session(_row("dropped", start="{}"))
    first.save_session(replace(old, last_text="1*2", inputs=2, resumable=True), "en")
    started, lang, latest = _begin(second, "redial")
    assert started is None and lang == "en" and latest.id == "dropped"
    assert latest.last_text == "1*2" and second.session("redial") is None
    first.save_session(replace(old, last_text="1*2*9", inputs=3, resumable=True, ended=True))
    started, _, latest = _begin(second, "redial")
    assert started is not None and latest.id == "dropped" and started.node == "main"
    assert first.session("redial") == started


def test_racing_hop_ones_use_the_first_start(workers: list) -> None:  # type: ignore[type-arg]
    """Two workers begin the same session at once, each with starts of its own (two
    content versions): both answer from the one that was inserted first."""
    other = FreshStarts({}, ('{"other": true}', "language", "language"))
    for sid, got in _races("begin", lambda i, sid: _begin(workers[i], sid,
                                                          starts=(STARTS, other)[i])[0]):
        stored = workers[0].session(sid)
        assert got[0] == got[1] == stored
        assert stored.start in (STARTS.default[0], other.default[0])


def test_hop_one_of_an_erased_phone_or_a_taken_id_stores_nothing(workers: list) -> None:  # type: ignore[type-arg]
    """A hop 1 computed before its phone was erased inserts nothing (``erased_phones``);
    an id already taken by another phone's session is not overwritten: the caller gets
    a start of their own, stored nowhere."""
    first, second = workers
    erased_at = time.time()
    privacy.erase_phones(second, ["pk-1"], erased_at)
    started, _, _ = _begin(first, "erased-begin", at=erased_at - 0.5)
    assert started.phone_key == "pk-1" and first.session("erased-begin") is None
    theirs = first.start_session(_row("shared-id", start='{"theirs": 1}', phone_key="pk-2"))
    started, _, _ = _begin(second, "shared-id", phone_key="pk-3")
    assert started.phone_key == "pk-3" and started.start == STARTS.default[0]
    assert first.session("shared-id") == theirs
