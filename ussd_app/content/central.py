"""The central store a deployment syncs from: a static HTTP server or a folder.

Both answer the same questions: the newest signed envelope (with the
validators that make asking again cheap), a manifest part, and a file by its
hash, resumed where an interrupted download stopped. Verifying, assembling and
switching versions live in ``sync.py``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import requests

from ussd_app.content.bundle import LATEST, MAX_ENVELOPE_BYTES
from ussd_app.errors import SyncError

CONNECT_TIMEOUT = 10.0  # seconds to open a connection to the central store
READ_TIMEOUT = 30.0  # seconds without a byte before a download is given up
CHUNK = 64 * 1024
RETRIES = 4  # a download cut mid-way is resumed (Range) this many times within one sync
RETRY_PAUSE = 0.5  # seconds before the first resume; doubles each time, at most 8 s


class _Cut(SyncError):
    """A body that ended early: resumable."""


class RateCap:
    """A byte budget shared by every download thread: ``kbps`` kilobits a second at most.

    Why: the office's link also carries calls, e-mail and the dashboard; a
    fresh sync must not take all of it. 0 means no cap.
    """

    def __init__(self, kbps: int = 0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = kbps * 1000 / 8  # bytes a second
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._next = 0.0  # when the budget is free again

    def take(self, size: int) -> None:
        if self.rate <= 0 or size <= 0:
            return
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            self._next = start + size / self.rate
            wait = self._next - now - 0.25  # a quarter of a second of burst is allowed
        if wait > 0:
            self.sleep(wait)


def public_url(url: str) -> str:
    """A URL without any user:password, fit for logs and /healthz."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _reason(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] ([^'\"\)]+)", text)
    if found:
        return found[-1].strip()
    if "IncompleteRead" in text or "Connection broken" in text:
        return "the connection broke mid-file"
    return exc.__class__.__name__


class HttpCentral:
    """A central store served over HTTP(S): nginx, object storage, any static server."""

    def __init__(self, url: str, cap: RateCap | None = None):
        self.base = url.rstrip("/")
        self.shown = public_url(self.base)
        self.cap = cap or RateCap()
        self.requests = 0
        self.bytes = 0
        self._count_lock = threading.Lock()
        self._local = threading.local()
        self._sessions: list[Any] = []

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = "migrantline-sync/1"
            self._local.session = session
            with self._count_lock:
                self._sessions.append(session)
        return session

    def _count(self, requests: int = 0, size: int = 0) -> None:
        with self._count_lock:
            self.requests += requests
            self.bytes += size

    def close(self) -> None:
        for session in self._sessions:
            session.close()

    def latest(self, validators: Mapping[str, str]) -> tuple[bytes | None, dict[str, str]]:
        """``latest.json`` and its validators; None when it did not change (304)."""
        url = f"{self.base}/{LATEST}"
        headers = {"Cache-Control": "no-cache"}
        if validators.get("etag"):
            headers["If-None-Match"] = validators["etag"]
        if validators.get("last_modified"):
            headers["If-Modified-Since"] = validators["last_modified"]
        try:
            with self._session().get(url, headers=headers, stream=True,
                                     timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as response:
                self._count(requests=1)
                if response.status_code == 304:
                    return None, dict(validators)
                if response.status_code == 404:
                    raise SyncError(f"nothing is published at {public_url(url)} (404): is "
                                    "MIGRANTLINE_CENTRAL_URL right, and was `migrantline "
                                    "content publish DIR OUT` run and OUT served there?")
                if response.status_code != 200:
                    raise SyncError(f"the central store answered {response.status_code} "
                                    f"{response.reason} for {public_url(url)}; try again "
                                    "later")
                body = bytearray()
                for chunk in response.iter_content(CHUNK):
                    body += chunk
                    if len(body) > MAX_ENVELOPE_BYTES:
                        raise SyncError(f"{public_url(url)} is larger than "
                                        f"{MAX_ENVELOPE_BYTES // 1_000_000} MB: not a "
                                        "manifest")
                self._count(size=response.raw.tell() or len(body))
                return bytes(body), _validators(response.headers)
        except requests.RequestException as exc:
            raise SyncError(f"cannot reach the central store at {self.shown} "
                            f"({_reason(exc)})") from None

    def fetch(self, name: str, size: int, part: Path | Sink, advance: Callable[[int], None],
              stop: threading.Event, label: str) -> None:
        """``name`` (``files/<sha>``, ``packs/<sha>``) into ``part`` (a file, or a sink that
        cuts a pack into its files), resuming what is there; a cut is resumed a few times
        before it is given up; raises on any failure."""
        url = f"{self.base}/{name}"
        sink = part if isinstance(part, Sink) else FileSink(part, size)
        restarts = 0
        plain = False  # after a gzip copy that does not decode: the file itself
        for attempt in range(RETRIES + 1):
            have = sink.resume_from()
            if have is None:
                return
            # From the start, gzip is welcome (a text pack is a fifth of its size); a resume
            # asks for the plain bytes from where it stopped (Range on the file itself).
            headers = {"Accept-Encoding": "identity" if have or plain else "gzip"}
            if have:
                headers["Range"] = f"bytes={have}-"
            try:
                with self._session().get(url, headers=headers, stream=True,
                                         timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as response:
                    self._count(requests=1)
                    if self._take(response, name, sink, have, size, label, stop, advance):
                        return
                    sink.discard()  # the answer did not match the request: from byte 0
                    restarts += 1
                    if restarts > 1:
                        break
                    continue
            except requests.exceptions.ContentDecodingError:
                sink.discard()  # what it gave cannot be trusted: the file itself, from 0
                plain = True
                continue
            except (requests.RequestException, _Cut) as exc:
                if attempt == RETRIES or stop.is_set():
                    reason = str(exc) if isinstance(exc, _Cut) else \
                        f"the download of {label} was interrupted ({_reason(exc)})"
                    raise SyncError(f"{reason}; run sync again: it resumes where it "
                                    "stopped") from None
                time.sleep(min(8.0, RETRY_PAUSE * 2 ** attempt))
        raise SyncError(f"the central store did not serve {label} consistently; try again")


    def _take(self, response: Any, name: str, sink: Sink, have: int, size: int, label: str,
              stop: threading.Event, advance: Callable[[int], None]) -> bool:
        """The answer's body into ``sink``; False when it is not the part asked for (416, or
        a range starting elsewhere), so the download starts over."""
        status = response.status_code
        if status == 416 or (status == 206 and _range_start(
                response.headers.get("Content-Range")) != have):
            return False
        if status == 404:
            raise NotServed(f"the central store has no file for {label} "
                            f"({name}: 404): was OUT uploaded completely? "
                            "upload files/ and packs/ before latest.json")
        if status not in (200, 206):
            raise SyncError(f"the central store answered {status} {response.reason} for "
                            f"{label} ({name}); try again later")
        chunk = CHUNK if self.cap.rate <= 0 else 16 * 1024
        wire = [0]

        def got(n: int) -> None:
            """``n`` bytes of the file in; the wire's may be fewer (gzip): the byte count
            and the bandwidth cap are the wire's."""
            sent = response.raw.tell()
            used, wire[0] = sent - wire[0], sent
            self._count(size=used)
            advance(n)
            self.cap.take(used)

        _receive(response.iter_content(chunk), sink, have if status == 206 else 0, size,
                 label, stop, got)
        return True


class NotServed(SyncError):
    """The central store has no such file (404): for a pack, an older layout."""


class DirCentral:
    """A central store that is a folder (a mounted share, a USB stick): publish's OUT."""

    def __init__(self, path: Path):
        self.root = path
        self.base = self.shown = str(path)
        self.requests = 0
        self.bytes = 0
        self._count_lock = threading.Lock()

    def close(self) -> None:
        pass

    def latest(self, validators: Mapping[str, str]) -> tuple[bytes | None, dict[str, str]]:
        path = self.root / LATEST
        try:
            stat = path.stat()
            tag = f"{stat.st_mtime_ns}-{stat.st_size}"
            with self._count_lock:
                self.requests += 1
            if validators.get("etag") == tag and time.time() - stat.st_mtime > 2:
                return None, dict(validators)
            data = path.read_bytes()[:MAX_ENVELOPE_BYTES + 1]
        except FileNotFoundError:
            raise SyncError(f"nothing is published in {path.parent} (no {LATEST}): is "
                            "MIGRANTLINE_CENTRAL_URL the folder `migrantline content "
                            "publish` wrote?") from None
        except OSError as exc:
            raise SyncError(f"cannot read the central store at {path}: {exc.strerror}") from None
        with self._count_lock:
            self.bytes += len(data)
        recent = time.time() - stat.st_mtime <= 2  # could change again within its mtime
        return data, {} if recent else {"etag": tag}

    def fetch(self, name: str, size: int, part: Path | Sink, advance: Callable[[int], None],
              stop: threading.Event, label: str) -> None:
        sink = part if isinstance(part, Sink) else FileSink(part, size)
        have = sink.resume_from()
        if have is None:
            return
        try:
            with (self.root / name).open("rb") as fh:
                with self._count_lock:
                    self.requests += 1
                fh.seek(have)

                def chunks() -> Iterator[bytes]:
                    while chunk := fh.read(CHUNK):
                        yield chunk

                _receive(chunks(), sink, have, size, label, stop, advance)
        except FileNotFoundError:
            raise NotServed(f"the central store has no file for {label} ({name}): was "
                            "OUT copied completely?") from None


@runtime_checkable
class Sink(Protocol):
    """Where a download's bytes go: one file, or a pack cut into its files as it arrives
    (``packs.PackSink``)."""

    def resume_from(self) -> int | None: ...
    def open(self, at: int) -> None: ...
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def discard(self) -> None: ...


class FileSink:
    """A download into one ``.part`` file, resumed from what it holds."""

    def __init__(self, part: Path, size: int):
        self.part, self.size = part, size
        self._fh: BinaryIO | None = None

    def resume_from(self) -> int | None:
        return _already_fetched(self.part, self.size)

    def open(self, at: int) -> None:
        self._fh = self.part.open("ab" if at else "wb")

    def write(self, data: bytes) -> None:
        assert self._fh is not None
        self._fh.write(data)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def discard(self) -> None:
        self.close()
        self.part.unlink(missing_ok=True)


def _receive(chunks: Any, sink: Sink, have: int, size: int, label: str,
             stop: threading.Event, advance: Callable[[int], None]) -> None:
    written = have
    sink.open(have)
    try:
        for chunk in chunks:
            if stop.is_set():
                raise SyncError("stopped: another download failed")
            written += len(chunk)
            if written > size:
                sink.discard()
                raise SyncError(f"{label}: the central store sent more bytes than the signed "
                                "manifest says; discarded (corrupt or tampered with)")
            sink.write(chunk)
            advance(len(chunk))
    finally:
        sink.close()
    if written < size:
        raise _Cut(f"the download of {label} was cut short ({written} of {size} bytes)")


def _range_start(header: str | None) -> int | None:
    found = re.match(r"bytes ([0-9]{1,18})-", header or "")
    return int(found.group(1)) if found else None


def _validators(headers: Mapping[str, str]) -> dict[str, str]:
    """ETag and Last-Modified to send next time, unless the file may change unseen.

    Servers like nginx make an ETag from the modification time in seconds and
    the size: a file replaced twice within a second by one of the same size
    would keep its ETag. So an answer whose Last-Modified is within 2 s of its
    Date is not remembered (the next sync fetches it again).
    """
    found = {}
    if headers.get("ETag"):
        found["etag"] = headers["ETag"]
    if headers.get("Last-Modified"):
        found["last_modified"] = headers["Last-Modified"]
        try:
            modified = parsedate_to_datetime(headers["Last-Modified"]).timestamp()
            now = (parsedate_to_datetime(headers["Date"]).timestamp() if headers.get("Date")
                   else time.time())
            if now - modified <= 2:
                return {}
        except (TypeError, ValueError):
            return {}
    return found


def open_central(url: str, kbps: int = 0) -> HttpCentral | DirCentral:
    if url.startswith(("http://", "https://")):
        return HttpCentral(url, RateCap(kbps))
    path = Path(url[len("file://"):] if url.startswith("file://") else url)
    if not path.is_dir():
        raise SyncError(f"MIGRANTLINE_CENTRAL_URL {url!r} is neither an http(s) URL nor a "
                        "folder", code=2)
    return DirCentral(path)


# ---------------------------------------------------------------- one sync


def _already_fetched(part: Path, size: int) -> int | None:
    """Bytes of an interrupted download to resume from; None when it is complete.

    A partial file longer than the file it should become is not ours to trust.
    """
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        part.unlink()
        have = 0
    return None if have == size and size else have
