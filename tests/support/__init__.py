"""What the tests share, imported one way: ``from support.<module> import <name>`` (tests/ is on pytest's pythonpath).

- ``timing``: the one timeout unit (``UNIT``, scaled by TEST_TIMEOUT_SCALE), and pytest-timeout's budget in it.
- ``environment``: CI detection (``in_ci``), ``require`` (skip locally, fail in CI), the programs under test.
- ``no_skips_in_ci``: the plugin that fails a CI run on any skip.
- ``figures_check``: the plugin that fails a run of every figure test whose figures are not the docs';
  ``figures``, ``figure_tables``, ``figure_resume_load``, ``figures_docs``: those figures, rendered.
- ``process``: ``Process`` and ``LineReader``, the one way to start a program and read its lines.
- ``tracker``: a real tracker process (``launch_tracker``, ``RunningTracker``); ``tls``: certificates for it.
- ``peers``, ``bots``, ``rawhttp``: WebSocket and HTTP peers of a real tracker, one, many, or raw.
- ``fakes``, ``roomkit``: fake clocks and sockets, a room on a real chat.log with no event loop.
- ``clients``, ``terminal``, ``fake_tracker``: real ``chat-client`` processes, in pipes or a tmux pane.
- ``redis_server``, ``archiver``, ``replicas``: a real redis-server, the archiver, members of replicas.
- ``campaign``, ``resume``, ``rotation``, ``disk``: the reliability campaign's figures and checks.
- ``web``: chromium under Playwright, and the page's other kinds of member; ``compose``: Docker Compose.

Fixtures stay in the conftest.py of the directory that uses them (tests/conftest.py for all). The
suites' own programs (tests/compose's checker, tests/reliability's soak) are imported by their
bare names by the tests that run them in-process.
"""
