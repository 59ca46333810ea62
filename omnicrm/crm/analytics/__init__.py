"""Analytics: predicted CLV (`clv`, `scoring`), reports (`reports`) and NPS (`nps`).

Import from the modules themselves: this package stays light, so reading the config
(which needs `settings`) does not load numpy and scipy.
"""
