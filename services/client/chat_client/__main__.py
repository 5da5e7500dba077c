"""``python -m chat_client``, same as ``chat-client``."""

from .cli import main

main()
