"""`loadtool fuzz`: Hypothesis-driven frame fuzzing of a live chat server.

Pure parts first: `strategies` (what to send) and `model` (the oracle: what a server must
answer); `runner` drives them against a server over real WebSockets. The WebSocket layer
(`--layer websocket`): `wsstrategies` (raw frame sequences, valid and mutated) and
`wsrunner` (RFC 6455's rules for what a server sends, and liveness).
"""

from .model import FuzzAssertion as FuzzAssertion
from .model import WireFrame as WireFrame
from .runner import FuzzFailure as FuzzFailure
from .runner import FuzzReport as FuzzReport
from .runner import FuzzUnreachable as FuzzUnreachable
from .runner import replay as replay
from .runner import run_fuzz as run_fuzz
from .wsrunner import WsFuzzReport as WsFuzzReport
from .wsrunner import replay_raw as replay_raw
from .wsrunner import run_ws_fuzz as run_ws_fuzz
