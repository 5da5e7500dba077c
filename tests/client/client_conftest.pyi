# What mypy sees as ``client_conftest``: conftest.py registers itself in sys.modules under that
# name at import (see there). Pytest never loads .pyi files; add a name here when a test imports it.
from conftest import PASSWORD as PASSWORD
from conftest import TIMEOUT_UNIT as TIMEOUT_UNIT
from conftest import Client as Client
from conftest import LineReader as LineReader
from conftest import tmux_required as tmux_required
