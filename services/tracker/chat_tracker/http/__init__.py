"""HTTP endpoints on FastAPI: REST (``rest.py``: /members, /log, /health), ``/admin``, ``/metrics``
and the web page (``web.py``, its files in ``chat_tracker/web/``); ``app.py`` puts them together.
"""
