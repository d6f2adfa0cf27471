"""Batch pulls from a durable JetStream consumer, one request per batch.

nats-py's `PullSubscription.fetch` waits for each message of a batch with its own
`asyncio.wait_for` (a task and a timer per message): at thousands of events per second
that was a third of the ingest's CPU time. Here one pull request asks for the batch
(`batch`, `expires`), a subscription callback collects the deliveries, and the fetch
returns when the batch is complete or the server ends the request (404 no messages,
408 request expired, 409 limits), at most `expires` + a grace period later.

Each request has its own reply subject under one wildcard subscription, so the status
that ends a request is told apart from a late status of an earlier one. Deliveries are
never told apart: one that arrives after its request was given up on (a local timeout)
is a valid message all the same and goes into the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

__all__ = ["BatchPuller"]

_STATUS = "Status"
_END_STATUSES = frozenset({"404", "408", "409"})
# Beyond the request's own expiry, for the server's 408 to arrive.
_GRACE = 1.0


class BatchPuller:
    def __init__(self, nc: NatsClient, stream: str, durable: str) -> None:
        self._nc = nc
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._request = 0
        self._wanted = 0
        self._msgs: list[Msg] = []
        self._done = asyncio.Event()

    async def start(self) -> BatchPuller:
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_msg)
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def fetch(self, batch: int, expires: float) -> list[Msg]:
        """Up to `batch` messages (more only if late deliveries were waiting); an empty
        list when none arrived within `expires` seconds."""
        self._request += 1
        self._wanted = batch
        self._done.clear()
        if len(self._msgs) < batch:
            request = orjson.dumps({"batch": batch - len(self._msgs), "expires": int(expires * 1e9)})
            await self._nc.publish(self._next_subject, request, reply=f"{self._inbox}.{self._request}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), expires + _GRACE)
        msgs, self._msgs = self._msgs, []
        return msgs

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers
        if headers is not None and not msg.data and _STATUS in headers:
            # A status of the current request ends it; 100 (heartbeat) and statuses
            # of earlier requests are ignored.
            if headers[_STATUS] in _END_STATUSES and msg.subject == f"{self._inbox}.{self._request}":
                self._done.set()
            return
        self._msgs.append(msg)
        if len(self._msgs) >= self._wanted:
            self._done.set()
