"""Run by Python at the start of a tracker the rotation tests launch: their hooks, from the test side.

Python imports ``sitecustomize`` from its path when it starts (coverage.py measures
subprocesses the same way). ``support.rotation.hooked`` puts this directory first on
the tracker's PYTHONPATH, so the tracker starts exactly as users start it
(``python -m chat_tracker``) and its production code carries no test hook: the kill
points and the shifted clock are installed here (``rotation_hooks.py``).
"""

import importlib
import os

# By name from the tracker's PYTHONPATH (this directory), where the tests' own import path does not reach.
importlib.import_module("rotation_hooks").install(os.environ)
