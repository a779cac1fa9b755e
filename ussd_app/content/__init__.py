"""What callers hear and read: the content tree being served, its checks, bundles and sync.

registry.py  the trees being served (swapped in whole, older ones kept for sessions)
check.py     the one content check (content check, publish, sync, preview, start-up)
preview.py   the printable preview of every screen
bundle.py    signed, content-addressed bundles: keys, manifests, publishing
files.py     files written atomically, hashed, linked
central.py   the central store: HTTP (ETag, Range) or a folder
mirror.py    the mirror on disk: versions, current/previous links, lock, state
fetch.py     fetching a version from the central store into the mirror
sync.py      a sync run, its result, the background sync, /healthz
rollback.py  serving the previous version again
sync_cli.py  `migrantline content keygen | publish | sync | rollback`
"""
