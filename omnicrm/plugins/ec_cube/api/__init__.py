"""EC-CUBE 4 through the Web API plugin (Api42): GraphQL at ``/api``, OAuth2 tokens.

``settings`` (a connection's settings), ``queries`` (every GraphQL document sent),
``tokens`` (the authorization-code tokens, kept outside omnicrm.toml), ``client``
(requests, retries, renewals), ``mapping`` (会員 and 受注 to omnicrm records),
``webhooks`` (X-ECCUBE-Signature) and ``channel`` (the channel type, the stream readers).
"""
