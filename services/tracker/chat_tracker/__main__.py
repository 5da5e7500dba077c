"""``python -m chat_tracker``: the same as the ``chat-tracker`` command."""

from chat_tracker.runtime.cli import main

raise SystemExit(main())
