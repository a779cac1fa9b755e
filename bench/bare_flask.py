"""The ceiling for our USSD endpoint: Flask under granian doing almost nothing.

Why: our service is Flask under granian too, so this app measures what the
framework and server alone cost per request on this machine (HTTP parsing,
routing, form parsing, the response). The gap between it and our service is
what our own code (menu replay, rendering, session storage) costs.

It reads the form as every real handler must, then answers a fixed screen:
the language list a fresh phone sees first, so the load script's check of
the first screen passes and every answer is the size of a real screen.

    granian --interface wsgi --host 127.0.0.1 --port 8000 --workers 2 \
        --blocking-threads 1 bench.bare_flask:app

(one blocking thread per worker, as ``migrantline serve`` runs granian;
granian's own default for WSGI is hundreds).
"""

from __future__ import annotations

from flask import Flask, Response, request

SCREEN = "CON Choose language\n1 English\n2 العربية\n3 Français\n4 नेपाली"

app = Flask(__name__)


@app.post("/ussd/africastalking")
def ussd() -> Response:
    """Answer every hop with the same screen, after parsing the AT form."""
    request.form.get("text", "")
    return Response(SCREEN, mimetype="text/plain")


# The voice baseline: a Twilio webhook parsed, a fixed TwiML menu of the size ours sends.
TWIML = ('<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="http://127.0.0.1/'
         'voice/twilio?s=1" actionOnEmptyResult="false" finishOnKey="#" input="dtmf" '
         'method="POST" timeout="4">' + "".join(
             f"<Play>http://127.0.0.1:5000/audio/tts/en/node/main/option/{i}.wav?v=0123abcd"
             "</Play>" for i in range(12)) + '</Gather><Redirect method="POST">'
         'http://127.0.0.1/voice/twilio?s=1&amp;ev=silence</Redirect></Response>')


@app.post("/voice/twilio")
@app.post("/voice/twilio/status")
def voice() -> Response:
    request.form.get("Digits", "")
    return Response(TWIML, mimetype="text/xml")
