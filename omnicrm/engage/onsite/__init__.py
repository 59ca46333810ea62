"""On-site engagement (Web接客): the offers shown on the shop's own pages by the
storefront script, the visitors who see them, and what the offers did.

:mod:`.settings` is the operator's ``[offers]`` and ``[storefront]``; :mod:`.offers`
decides, without I/O, what a visitor sees; :mod:`.visitors` keeps visitors and events in
the store; :mod:`.tokens` signs and checks the storefront's requests; :mod:`.report`
measures each variant. docs/onsite.md is the operator's reference.
"""
