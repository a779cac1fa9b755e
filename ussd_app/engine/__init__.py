"""The channel-neutral core: content model, loader, paging and state machine.

Nothing in this package imports Flask, a provider SDK or the database: it
is driven by channels and tested on its own.
"""
