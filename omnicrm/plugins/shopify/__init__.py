"""Shopify: customers and orders from the Admin GraphQL API.

Modules: ``queries`` (every GraphQL document, the pinned API version), ``settings`` (the
connection settings), ``client`` (httpx transport, cost-budget pacing, errors),
``bulk`` (bulk operations: run, resume, download, join JSONL), ``mapping`` (Shopify
nodes to omnicrm records), ``plugin`` (the hooks), ``webhooks`` (the receiving app),
``sandbox`` (a local emulator of the Admin API for the demo and the tests).
"""
