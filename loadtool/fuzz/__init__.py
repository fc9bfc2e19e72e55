"""`loadtool fuzz`: Hypothesis-driven frame fuzzing of a live chat server.

Pure parts first: `strategies` (what to send) and `model` (the oracle: what a server must
answer); `runner` drives them against a server over real WebSockets.
"""

from .model import FuzzAssertion as FuzzAssertion
from .model import WireFrame as WireFrame
from .runner import FuzzFailure as FuzzFailure
from .runner import FuzzReport as FuzzReport
from .runner import FuzzUnreachable as FuzzUnreachable
from .runner import replay as replay
from .runner import run_fuzz as run_fuzz
