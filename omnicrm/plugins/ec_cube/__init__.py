"""EC-CUBE, the most used open-source EC platform in Japan.

``api``: EC-CUBE 4.2/4.3 with the official Web API plugin. ``csv``: the admin screen's CSV
exports (2.x and 4.x) for shops without it. ``masters``: the master data (prefectures,
statuses, item types). ``sandbox``: a local emulator of the Web API.
"""
