"""Webhook dispatch: each message as a signed JSON POST to the shop's own endpoint.

For a shop that sends through a tool of its own (its marketing automation, an SMS
gateway, a print shop's API): omnicrm plans, checks consent and keeps the outbox; the
shop's endpoint delivers. Modules: ``settings`` (the endpoint, the secret, retries),
``signing`` (the ``X-Omnicrm-Signature`` header, and its check for receivers),
``client`` (the POST, its retries and what answers mean), ``plugin`` (one dispatcher
per medium, the hook), ``sandbox`` (a loopback receiver that checks signatures).
"""
