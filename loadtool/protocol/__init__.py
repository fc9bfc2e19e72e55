"""Protocol v1, sans-IO: frame classes, the codec, error and close codes, tokens.

Imports no trio and opens no socket; the server, the simulated clients and the
conformance gate all speak through this package (docs/protocol.md).
"""

from ._codec import SEED_FIELDS as SEED_FIELDS
from ._codec import Source as Source
from ._codec import decode as decode
from ._codec import decode_object as decode_object
from ._codec import encode as encode
from ._codec import to_wire as to_wire
from ._errors import CloseCode as CloseCode
from ._errors import ErrorCode as ErrorCode
from ._errors import ProtocolError as ProtocolError
from ._fields import MAX_ID_CHARS as MAX_ID_CHARS
from ._fields import PROTOCOL_VERSION as PROTOCOL_VERSION
from ._fields import ROOM_PATTERN as ROOM_PATTERN
from ._fields import USER_PATTERN as USER_PATTERN
from ._fields import utc_now_iso as utc_now_iso
from ._frames import CLIENT_FRAMES as CLIENT_FRAMES
from ._frames import MAX_HISTORY_LIMIT as MAX_HISTORY_LIMIT
from ._frames import SERVER_FRAMES as SERVER_FRAMES
from ._frames import Ack as Ack
from ._frames import ClientFrame as ClientFrame
from ._frames import Error as Error
from ._frames import Frame as Frame
from ._frames import HistoryPage as HistoryPage
from ._frames import HistoryRequest as HistoryRequest
from ._frames import Join as Join
from ._frames import Joined as Joined
from ._frames import Leave as Leave
from ._frames import Left as Left
from ._frames import Message as Message
from ._frames import Ping as Ping
from ._frames import Pong as Pong
from ._frames import Presence as Presence
from ._frames import SendMessage as SendMessage
from ._frames import ServerFrame as ServerFrame
from ._frames import Typing as Typing
from ._frames import TypingNotice as TypingNotice
from ._frames import Welcome as Welcome
from ._tokens import ANY_ROOM as ANY_ROOM
from ._tokens import MIN_SECRET_BYTES as MIN_SECRET_BYTES
from ._tokens import Grant as Grant
from ._tokens import TokenError as TokenError
from ._tokens import mint_token as mint_token
from ._tokens import verify_token as verify_token
