"""Results, sans-IO: the correlation payload, latency histograms, the delivery ledger,
per-second time series and the results.json schema (docs/results.md).

Pure: nothing here reads a clock or opens a socket; callers pass run-clock times
(`loadtool.results.runclock.RunClock`, deliberately not re-exported here, is the one
place that reads time). `write_results` / `read_results` do blocking file I/O.
"""

from .correlation import ROOM_PREFIX as ROOM_PREFIX
from .correlation import Correlation as Correlation
from .correlation import check_run_id as check_run_id
from .correlation import decode_text as decode_text
from .correlation import encode_text as encode_text
from .correlation import message_id as message_id
from .correlation import new_run_id as new_run_id
from .correlation import parse_message_id as parse_message_id
from .correlation import room_index as room_index
from .correlation import room_name as room_name
from .histogram import LatencyHistogram as LatencyHistogram
from .ledger import Expect as Expect
from .ledger import Ledger as Ledger
from .ledger import LedgerState as LedgerState
from .ledger import LedgerStateError as LedgerStateError
from .ledger import LedgerSummary as LedgerSummary
from .ledger import Receipt as Receipt
from .ledger import merge_states as merge_states
from .schema import SCHEMA_VERSION as SCHEMA_VERSION
from .schema import ClockInfo as ClockInfo
from .schema import ClockSync as ClockSync
from .schema import Fault as Fault
from .schema import GeneratorInfo as GeneratorInfo
from .schema import ReconnectInfo as ReconnectInfo
from .schema import ResultsError as ResultsError
from .schema import ScenarioInfo as ScenarioInfo
from .schema import TargetInfo as TargetInfo
from .schema import ThresholdLike as ThresholdLike
from .schema import build_results as build_results
from .schema import iso_utc as iso_utc
from .schema import merge_results as merge_results
from .schema import parse_iso_utc as parse_iso_utc
from .schema import read_results as read_results
from .schema import results_metrics as results_metrics
from .schema import validate_results as validate_results
from .schema import write_results as write_results
from .timeseries import TimeSeries as TimeSeries
from .timeseries import merge_timeseries as merge_timeseries
