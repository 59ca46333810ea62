"""The web endpoints beside the webhooks, served by the same ASGI app
(:func:`omnicrm.app.webhook_app.create_app`): each module gives the routes of one
concern (the storefront's offers, a message's tracking and unsubscribe links)."""
