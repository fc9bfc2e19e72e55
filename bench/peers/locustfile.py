"""Locust user for the fan-out scenario (bench/generator.py).

Locust has no plain WebSocket user in core (only Socket.IO): this one is websocket-client
on gevent (Locust monkey-patches sockets), with a reader greenlet per user that records
each delivery's latency (sender's stamp to receipt) as a request event named `deliver`.
Settings come from the environment: BENCH_RATE (messages/s per user), BENCH_TEXT
(characters), BENCH_OUT (where the summary JSON goes when Locust quits).
"""

import json
import os
import time
from typing import Any

import gevent
import websocket
from locust import User, constant_pacing, events, task

RATE = float(os.environ.get("BENCH_RATE", "1"))
PAD = "x" * int(os.environ.get("BENCH_TEXT", "128"))
SENT = [0]


class ChatUser(User):
    wait_time = constant_pacing(1.0 / RATE)

    def on_start(self) -> None:
        self.ws = websocket.create_connection(self.host)
        self.uid = str(id(self))
        self.seq = 0
        self.reader = gevent.spawn(self._read)

    def on_stop(self) -> None:
        self.reader.kill()
        self.ws.close()

    def _read(self) -> None:
        fire = self.environment.events.request.fire
        while True:
            data = self.ws.recv()
            msg = json.loads(data)
            fire(
                request_type="WS",
                name="deliver",
                response_time=time.time() * 1000 - msg["sentAt"],
                response_length=len(data),
                exception=None,
                context={},
            )

    @task
    def send(self) -> None:
        self.seq += 1
        frame = {
            "id": f"{self.uid}-{self.seq}",
            "room": "general",
            "senderId": self.uid,
            "text": PAD,
            "sentAt": time.time() * 1000,
        }
        self.ws.send(json.dumps(frame))
        SENT[0] += 1


@events.quitting.add_listener
def _summary(environment: Any, **_kwargs: Any) -> None:
    out = os.environ.get("BENCH_OUT")
    if not out:
        return
    s = environment.stats.get("deliver", "WS")
    with open(out, "w") as f:
        json.dump(
            {
                "deliveries": s.num_requests,
                "sent": SENT[0],
                "p50_ms": s.get_response_time_percentile(0.5) if s.num_requests else None,
                "p99_ms": s.get_response_time_percentile(0.99) if s.num_requests else None,
            },
            f,
        )
