"""Processes and commands: ``chat-tracker`` (``cli.py``, its flags in ``flags.py``), uvicorn with the
shutdown order the chat needs (``server.py``), ``chat-tracker archive``, ``rotate-key`` and ``accounts``.
"""
