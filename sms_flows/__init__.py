"""The SMS channel: inbound messages into the menu engine, and the outbox that sends.

``endpoints`` receives from Africa's Talking, Twilio and Kannel; ``service``
turns a message into a reply with the same engine and content as USSD
(``ussd_app.engine``); ``keywords`` matches words in every shipped language;
``layout`` renders a screen as an SMS; ``outbox`` and ``providers`` deliver
every message the service sends, whatever channel queued it.
"""
