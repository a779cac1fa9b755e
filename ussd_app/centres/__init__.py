"""Partner centres in other countries: their directory, referrals and updates between them.

    crypto.py   keys, signed centre cards, sealed and signed envelopes (pure)
    service.py  Centres: the directory, refer, send_update, receive, the delivery job
    inbox.py    POST /partners/inbox: where partner centres deliver
    cli.py      migrantline partners export/import/list/revoke
"""
