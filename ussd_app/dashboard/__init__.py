"""The hotline operators' dashboard at ``/operator/``: triage and follow complaints.

Server-rendered HTML with no script at all (the Content-Security-Policy
forbids it), one small stylesheet and inline SVG for the chart: offices have
poor links and no CDN is reachable. Jinja autoescapes everything a caller
typed. ``app.init_app`` wires it into ``create_app``; ``blueprint`` holds the
routes' Blueprint, the ``*_views`` modules the pages, ``auth`` the sign-in.
"""
