"""MigrantLine: safe-migration information and help by USSD, SMS and voice.

The package root imports nothing, so that ``import ussd_app.engine`` (the CLI, the
benchmarks, a test of one layer) never pulls in Flask, the store and every channel.
The web application is built by ``ussd_app.web.create_app``.
"""
