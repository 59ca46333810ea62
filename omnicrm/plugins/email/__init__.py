"""Email over SMTP: a dispatcher for ``Medium.EMAIL``.

Modules: ``settings`` (the server, the sender, unsubscribing, DKIM), ``templates``
(Jinja2 in a sandbox, strict about names), ``compose`` (headers, parts, the
特定電子メール法 footer, DKIM), ``smtp`` (kept connections, what each answer means),
``plugin`` (the hooks), ``sandbox`` (a local SMTP catcher for the demo and the tests).
"""
