"""Text to 8 kHz mono phone audio, offline first: espeak-ng then sox; gTTS when online.

8 kHz mono is what a phone line carries anyway, so every file made here (and
every field recording imported) is that, kept as MP3 at 16 kbit/s (both
providers' ``<Play>`` take it; an eighth of the bytes of u-law WAV, which
matters to an office paying its sync by the megabyte) or, where a provider
or ``MIGRANTLINE_AUDIO_FORMAT=wav`` asks for it, as 8 kHz u-law WAV. Each
subprocess has a timeout and a failure says what to install or fix:
rendering runs from the CLI or a background job, never in a webhook.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ussd_app.errors import AudioError

RATE = 8000
MP3_BITRATE = "16k"  # MPEG-2.5 layer III at 8 kHz: telephone speech stays clear (README)
MP3_MIN_SPEECH_BYTES = 700  # all silence makes 576 (4 frames: the pad, encoder delay); "un" 864
# Silence longer than this at either end of a prompt is cut (below -50 dBFS, far under
# speech): a caller waits through it on every prompt, and the wire carries it.
# A menu is a dozen short prompts in a row (a key, a label): 0.2 s kept around each made
# the English main menu 2 s longer (bench/voice_menus.py).
KEEP_LEAD, KEEP_TAIL, SILENT_DB = 0.02, 0.06, -50
TRIM = (f"silenceremove=start_periods=1:start_threshold={SILENT_DB}dB:"
        f"start_silence={KEEP_LEAD},areverse,"
        f"silenceremove=start_periods=1:start_threshold={SILENT_DB}dB:"
        f"start_silence={KEEP_TAIL},areverse")
FORMATS = ("mp3", "wav")
SILENT_DB = -50.0  # a recording whose loudest sample is quieter than this holds no speech
MIN_SECONDS = 0.2
TIMEOUT_SECONDS = 120  # a long article takes espeak-ng a few seconds; a hung one is killed
PROBE_HOST = "translate.google.com"
PROBE_TIMEOUT = 1.5

# Our language codes -> espeak-ng voices (espeak-ng-data has these dictionaries).
ESPEAK_VOICES: dict[str, str] = {
    "en": "en", "ar": "ar", "fr": "fr", "ne": "ne", "hi": "hi", "bn": "bn", "ur": "ur",
    "am": "am", "sw": "sw", "id": "id", "ms": "ms", "my": "my", "vi": "vi", "th": "th",
    "fa": "fa", "prs": "fa", "om": "om", "si": "si", "ta": "ta", "te": "te", "es": "es",
    "pt": "pt", "ru": "ru", "tr": "tr", "zh": "cmn",
}
# No espeak-ng voice: these need gTTS (online), the provider's voice or field recordings.
NO_ESPEAK_VOICE = ("km", "lo", "tl", "fil", "ps", "ti", "so")
# gTTS languages (gtts.lang.tts_langs(), a static list) that we use.
GTTS_LANGS = frozenset("af am ar bg bn bs ca cs cy da de el en es et eu fi fr gl gu ha hi hr hu "
                       "id is it ja jw km kn ko la lt lv ml mr ms my ne nl no pa pl pt ro ru si "
                       "sk sq sr su sv sw ta te th tl tr uk ur vi".split())


class TtsError(AudioError):
    """Audio could not be made; the message says why and what to do."""


def espeak_voice(lang: str) -> str | None:
    return ESPEAK_VOICES.get(lang.split("-")[0].lower())


def missing_tools() -> list[str]:
    """The programs rendering needs that are not installed (Debian package names)."""
    return [name for name in ("espeak-ng", "sox") if shutil.which(name) is None]


_online: bool | None = None
_online_lock = threading.Lock()


def online(setting: str = "auto") -> bool:
    """Whether gTTS can be used: installed, allowed, and Google reachable (probed once)."""
    global _online
    if setting.lower() in ("off", "0", "false", "no"):
        return False
    try:
        import gtts  # noqa: F401  # lazy: optional dependency (`pip install gTTS`)
    except ImportError:
        return False
    with _online_lock:
        if _online is None:
            try:
                socket.create_connection((PROBE_HOST, 443), timeout=PROBE_TIMEOUT).close()
                _online = True
            except OSError:
                _online = False
        return _online


def _lower_priority() -> None:
    """Speech is made beside live calls: it gets the CPU they leave (nice 10)."""
    os.nice(10)


def _run(args: list[str], stdin: bytes | None = None) -> None:
    try:
        done = subprocess.run(args, input=stdin, capture_output=True, timeout=TIMEOUT_SECONDS,
                              check=False, preexec_fn=_lower_priority)
    except FileNotFoundError:
        raise TtsError(f"{args[0]} is not installed: apt-get install espeak-ng sox "
                       "libsox-fmt-mp3 ffmpeg") from None
    except subprocess.TimeoutExpired:
        raise TtsError(f"{args[0]} took over {TIMEOUT_SECONDS} s and was stopped") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
        raise TtsError(f"{args[0]} failed (exit {done.returncode}): {detail[0]}")


def wav_format(data: bytes) -> tuple[int, int] | None:
    """(sample rate, channels) of a RIFF/WAVE with audio data, else None."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, fmt, has_data = 12, None, False
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt " and size >= 16:
            channels, rate = struct.unpack("<HI", data[pos + 10:pos + 16])
            fmt = (rate, channels)
        elif chunk == b"data":
            has_data = size > 0 or len(data) > pos + 8
            break
        pos += 8 + size + (size & 1)
    return fmt if fmt and has_data else None


def wav_complete(data: bytes) -> bool:
    """Whether a WAV holds all the audio its header promises (a copy cut short does not)."""
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"data":
            return size in (0, 0xFFFFFFFF) or pos + 8 + size <= len(data)
        pos += 8 + size + (size & 1)
    return False


def check_output(path: Path) -> None:
    with path.open("rb") as fh:
        head = fh.read(4096)
    found = wav_format(head)
    if found != (RATE, 1):
        raise TtsError(f"{path.name}: not an 8 kHz mono WAV (found {found or 'no audio'})")


def to_phone_wav(source: Path, out: Path) -> None:
    """Any audio file -> 8 kHz mono u-law WAV at ``out`` (written whole or not at all).

    u-law at 8 kHz is the telephone network's own coding: nothing is lost that a call
    could carry, and a second of audio is 8 kB, half of 16-bit PCM.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".wav", dir=out.parent, prefix=".tmp-")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if source.suffix.lower() in (".wav",) or shutil.which("ffmpeg") is None:
            _run(["sox", str(source), "-r", str(RATE), "-c", "1", "-b", "8", "-e", "u-law",
                  str(tmp)])
        else:  # MP3, M4A, OGG from a phone's recorder: ffmpeg reads them all
            _run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
                  "-ar", str(RATE), "-ac", "1", "-c:a", "pcm_mulaw", str(tmp)])
        check_output(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _sox_speech_mp3(source: Path, tmp: Path) -> bool:
    """Generated speech (espeak-ng's WAV) by sox: the same MP3 as ffmpeg makes (size,
    length and loudness measured equal) in a fifth of the time (18 against 90 ms a prompt:
    sox starts faster), which is most of what rendering a language costs. False when sox
    cannot, or the speech was all silence (ffmpeg below keeps such a file whole)."""
    if not _sox_writes_mp3():
        return False
    # Half the lead: sox finds the speech's start up to 20 ms before ffmpeg does. Measured
    # on 44 short prompts in six languages, it then cuts 4.5 ms less than ffmpeg on
    # average (at most 10 ms either way), where the full lead added 5.5 ms (up to 20).
    _sox_mp3(source, tmp, KEEP_LEAD / 2)
    return tmp.stat().st_size > MP3_MIN_SPEECH_BYTES


def _sox_mp3(source: Path, tmp: Path, lead: float) -> None:
    """sox's MP3 with the silence at both ends cut, ``lead`` and ``KEEP_TAIL`` kept."""
    _run(["sox", str(source), "-r", str(RATE), "-c", "1", "-C", "16", str(tmp),
          "silence", "1", "0.01", f"{SILENT_DB}d", "reverse",
          "silence", "1", "0.01", f"{SILENT_DB}d", "reverse",
          "pad", str(lead), str(KEEP_TAIL)])


def to_phone_mp3(source: Path, out: Path, speech: bool = False) -> None:
    """Any audio file -> 8 kHz mono MP3 at 16 kbit/s at ``out`` (written whole or not at all:
    a failed conversion leaves the file that was there, and callers keep hearing it).
    ``speech``: a WAV espeak-ng just made (sox converts it, see ``_sox_speech_mp3``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".mp3", dir=out.parent, prefix=".tmp-")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if speech and _sox_speech_mp3(source, tmp):
            pass
        elif shutil.which("ffmpeg") is not None:
            # No ID3 tags and no Xing/LAME header frame: a constant-rate stream needs
            # neither to play, and each costs bytes on every prompt.
            # A source that is silence throughout is kept as it is, not cut to nothing.
            for trim in (["-af", TRIM], []):
                _run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
                      "-map", "0:a:0", "-map_metadata", "-1", *trim,
                      "-ar", str(RATE), "-ac", "1",
                      "-c:a", "libmp3lame", "-b:a", MP3_BITRATE, "-id3v2_version", "0",
                      "-write_id3v1", "0", "-write_xing", "0", "-f", "mp3", str(tmp)])
                if tmp.stat().st_size:
                    break
        elif _sox_writes_mp3():
            _sox_mp3(source, tmp, KEEP_LEAD)
        else:
            raise TtsError("MP3 needs ffmpeg (or sox with libsox-fmt-mp3): apt-get install "
                           "ffmpeg, or set MIGRANTLINE_AUDIO_FORMAT=wav; the audio there "
                           "now keeps playing")
        with tmp.open("rb") as fh:
            head = fh.read(4)
        if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
            raise TtsError(f"{source.name}: the conversion gave no MP3 audio")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _sox_writes_mp3() -> bool:
    found = shutil.which("sox")
    return found is not None and _sox_at_writes_mp3(found)


@functools.cache
def _sox_at_writes_mp3(sox: str) -> bool:
    """Asked once per sox program: the answer costs a process start."""
    try:
        done = subprocess.run([sox, "-h"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b" mp3" in done.stdout


def to_phone_audio(source: Path, out: Path, speech: bool = False) -> None:
    """Any audio file -> phone audio at ``out``, MP3 or WAV as its name ends."""
    if out.suffix.lower() == ".mp3":
        to_phone_mp3(source, out, speech)
    else:
        to_phone_wav(source, out)


def missing_converter(audio_format: str) -> str | None:
    """What to install before audio can be kept as ``audio_format``, or None."""
    if audio_format == "mp3" and shutil.which("ffmpeg") is None and not _sox_writes_mp3():
        return "ffmpeg (or libsox-fmt-mp3)"
    return None


@dataclass(frozen=True)
class Heard:
    """What a listener would notice of a file: how long, how loud on average, how loud at most."""

    seconds: float
    mean_db: float  # RMS level, dBFS
    peak_db: float  # loudest sample, dBFS (0.0: clipped)


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_TIME = re.compile(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)")
_MEAN = re.compile(r"mean_volume: (-?(?:\d+(?:\.\d+)?|inf)) dB")
_PEAK = re.compile(r"max_volume: (-?(?:\d+(?:\.\d+)?|inf)) dB")


def listen(path: Path) -> Heard:
    """Decode ``path`` whole (ffmpeg's volumedetect): a file that does not decode raises."""
    if shutil.which("ffmpeg") is None:
        raise TtsError("ffmpeg is not installed: apt-get install ffmpeg")
    try:
        done = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", str(path),
                               "-map", "0:a:0", "-af", "volumedetect", "-f", "null", "-"],
                              capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise TtsError(f"ffmpeg took over {TIMEOUT_SECONDS} s to read {path.name}") from None
    err = done.stderr.decode("utf-8", "replace")
    mean, peak = _MEAN.search(err), _PEAK.search(err)
    times = _TIME.findall(err) or _DURATION.findall(err)
    if done.returncode != 0 or not mean or not peak or not times:
        last = err.strip().splitlines()[-1:] or ["no audio in it"]
        raise TtsError(f"{path.name} is not audio ffmpeg can read ({last[0]}): record it "
                       "again or save it as WAV or MP3")
    h, m, sec = times[-1]
    return Heard(int(h) * 3600 + int(m) * 60 + float(sec), float(mean.group(1)),
                 float(peak.group(1)))


def check_recording(path: Path) -> Heard:
    """A field recording fit to be played: it decodes, lasts, and is not silence."""
    heard = listen(path)
    if heard.seconds < MIN_SECONDS:
        raise TtsError(f"{path.name} lasts {heard.seconds:.2f} s: too short to be a prompt")
    if heard.peak_db < SILENT_DB:
        raise TtsError(f"{path.name} is silent (loudest {heard.peak_db} dB): check the "
                       "microphone and record it again")
    return heard


def synthesize(text: str, lang: str, out: Path, online_setting: str = "auto") -> str:
    """Speak ``text`` in ``lang`` into ``out``; returns the engine used ("gtts"/"espeak-ng")."""
    if not text.strip():
        raise TtsError("nothing to say: the text is empty")
    with tempfile.TemporaryDirectory(prefix="migrantline-tts-") as tmp:
        base = lang.split("-")[0].lower()
        if base in GTTS_LANGS and online(online_setting):
            try:
                from gtts import gTTS  # lazy: optional dependency, used only online

                mp3 = Path(tmp) / "g.mp3"
                gTTS(text, lang=base, timeout=20).save(str(mp3))
                to_phone_audio(mp3, out)
                return "gtts"
            except Exception:  # noqa: BLE001 - any gTTS failure: espeak-ng below
                pass
        voice = espeak_voice(lang)
        if voice is None:
            raise TtsError(f"espeak-ng has no voice for '{lang}': record this prompt "
                           "(`migrantline prompts record`) or use the provider's voice")
        raw = Path(tmp) / "e.wav"
        _run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), "--stdin"],
             stdin=text.encode("utf-8"))
        to_phone_audio(raw, out, speech=True)
        return "espeak-ng"


GAP_SECONDS = 0.35  # between the groups of a number read out: "974 · 4000 · 0000"


def make_gap(out: Path, seconds: float = GAP_SECONDS) -> None:
    """A short silence as phone audio at ``out`` (MP3 or WAV as its name ends): what a
    caller hears between the groups of digits of a phone number or a reference."""
    if shutil.which("ffmpeg") is None:
        raise TtsError("ffmpeg is not installed: apt-get install ffmpeg")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=out.suffix, dir=out.parent, prefix=".tmp-")
    os.close(fd)
    tmp = Path(tmp_name)
    codec = (["-c:a", "libmp3lame", "-b:a", MP3_BITRATE, "-id3v2_version", "0",
              "-write_id3v1", "0", "-write_xing", "0", "-f", "mp3"]
             if out.suffix == ".mp3" else ["-c:a", "pcm_mulaw", "-f", "wav"])
    try:
        _run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
              f"anullsrc=r={RATE}:cl=mono", "-t", f"{seconds}", "-map_metadata", "-1",
              *codec, str(tmp)])
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
