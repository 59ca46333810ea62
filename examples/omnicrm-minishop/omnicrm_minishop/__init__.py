"""omnicrm-minishop: an example third-party omnicrm channel plugin for MiniShop.

MiniShop is a fictional small Japanese cart system with a plain REST JSON API. The
plugin lives in :mod:`omnicrm_minishop.plugin`; :mod:`omnicrm_minishop.sandbox` emulates
the API locally for the demo and the tests.
"""

__version__ = "0.1.0"
