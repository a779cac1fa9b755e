"""The phone networks' gateways, one module per provider, inbound and outbound together.

Each module (``africastalking``, ``twilio``, ``kannel``) holds what the
service knows of that provider: who may call its webhooks, the fields of
each callback (parsed into ``inbound``'s shapes), and the requests that send
an SMS, place a call or fetch a recording. Every request goes through a
``transport.Transport``, so tests play the provider at the HTTP boundary.
"""
