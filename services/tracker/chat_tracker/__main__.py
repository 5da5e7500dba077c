"""``python -m chat_tracker``: the same as the ``chat-tracker`` command."""

from .cli import main

raise SystemExit(main())
