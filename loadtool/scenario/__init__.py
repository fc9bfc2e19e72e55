"""Scenarios, pure: the YAML model, its loader and the pass/fail thresholds.

Imports no trio and opens no socket; `loadtool run` loads a scenario here and the swarm
reads everything it does from the resulting frozen `Scenario` (docs/scenarios.md).
"""

from .loader import load_scenario as load_scenario
from .loader import parse_scenario as parse_scenario
from .model import Arrival as Arrival
from .model import Auth as Auth
from .model import Behaviour as Behaviour
from .model import Capacity as Capacity
from .model import CommandFault as CommandFault
from .model import Dialect as Dialect
from .model import DropFault as DropFault
from .model import Fault as Fault
from .model import FixedSize as FixedSize
from .model import MessageSize as MessageSize
from .model import NormalSize as NormalSize
from .model import Phase as Phase
from .model import PhaseWindow as PhaseWindow
from .model import Plan as Plan
from .model import Population as Population
from .model import Reconnect as Reconnect
from .model import ReconnectPolicy as ReconnectPolicy
from .model import RestartServerFault as RestartServerFault
from .model import Scenario as Scenario
from .model import ScenarioError as ScenarioError
from .model import Spread as Spread
from .model import Target as Target
from .model import UniformSize as UniformSize
from .model import Vary as Vary
from .thresholds import KNOWN_METRICS as KNOWN_METRICS
from .thresholds import MetricKind as MetricKind
from .thresholds import Operator as Operator
from .thresholds import Threshold as Threshold
from .thresholds import ThresholdError as ThresholdError
from .thresholds import ThresholdResult as ThresholdResult
from .thresholds import evaluate as evaluate
from .thresholds import metric_kind as metric_kind
from .thresholds import parse_slo as parse_slo
from .thresholds import parse_threshold as parse_threshold
