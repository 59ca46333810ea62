"""LINE Messaging API: a dispatcher for ``Medium.LINE``.

Modules: ``settings`` (the channel's token and secret, the API's address, retries),
``client`` (push, multicast and link tokens over httpx, what each answer means),
``plugin`` (the hooks), ``webhooks`` (follow, unfollow and accountLink events, signed
with the channel secret), ``sandbox`` (a local emulator of the Messaging API).
"""
