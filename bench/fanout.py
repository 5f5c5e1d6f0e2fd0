"""Fanout load: thousands of WebSocket subscribers and one producer on one selector.

An asyncio protocol costs some tens of microseconds per received frame, enough
for the load generator, not the server, to set the pace of a 1,000-socket
broadcast. Here every socket is a plain non-blocking socket on one epoll
loop (`ReadReady`): per frame the work is one `recv`, a header parse and an
append. Each frame is stamped with `time.monotonic()` as epoll reports its
socket readable (an upper bound of its arrival that does not grow with the
load generator's own work on the other sockets ready with it); JSON is
decoded after the run.

Subscribers speak graphql-transport-ws: connection_init (with the bearer
token), connection_ack, subscribe, then a ping whose pong proves the server
has taken the subscribe message. The producer is a keep-alive HTTP connection
on the same loop; its response time is the start of every latency.
"""

from __future__ import annotations

import contextlib
import json
import resource
import select
import socket
import time
from collections import Counter
from typing import Any

from bench.measure import latency_summary, own_cpu_seconds, processes_cpu_seconds, rss_kb
from bench.wire import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    WireError,
    encode_frame,
    http_request,
    parse_response,
    split_frames,
    text_frame,
    upgrade_request,
)

SUBPROTOCOL = "graphql-transport-ws"
ERROR_SAMPLES = 3
RECV_BYTES = 256 * 1024

UPGRADING, INITIALISING, SUBSCRIBING, LIVE, FAILED = range(5)


class Subscriber:
    __slots__ = ("buffer", "index", "joined", "owner", "payloads", "sock", "state", "tag", "times")

    def __init__(self, owner: Fanout, sock: socket.socket, index: int, tag: int) -> None:
        self.owner = owner
        self.sock = sock
        self.index = index
        self.tag = tag  # which server of the scenario
        self.state = UPGRADING
        self.joined = False  # became LIVE at some point
        self.buffer = bytearray()
        self.times: list[float] = []
        self.payloads: list[bytes] = []


class Producer:
    __slots__ = ("buffer", "owner", "response", "sock")

    def __init__(self, owner: Fanout, sock: socket.socket) -> None:
        self.owner = owner
        self.sock = sock
        self.buffer = bytearray()
        self.response: tuple[int, bytes, float] | None = None


def _send(sock: socket.socket, data: bytes) -> None:
    """Send a small message in full (setup, pongs, requests: rare and tiny)."""
    sock.settimeout(10)
    try:
        sock.sendall(data)
    finally:
        sock.setblocking(False)


def _dig(document: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


# While an event's frames trickle in, a load generator that keeps up would
# wake for each one: an epoll call per frame, and its CPU near 100 % though
# the server, not it, sets the pace (the run would then stop as client-bound).
# After a wake-up with fewer than COALESCE_BELOW sockets ready it sleeps
# COALESCE_S first, so frames are read in batches; a frame that arrived
# meanwhile is stamped at most that much late, on both servers alike.
COALESCE_BELOW = 16
COALESCE_S = 0.0002


class ReadReady:
    """The sockets that have data, straight from epoll. `selectors` builds a
    key object per ready socket, about a microsecond each: with a thousand
    subscribers per event that alone was a tenth of the load generator's
    CPU, enough to make the raw baseline's rounds client-bound."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._peers: dict[int, Any] = {}

    def register(self, sock: socket.socket, peer: Any) -> None:
        self._peers[sock.fileno()] = peer
        self._epoll.register(sock.fileno(), select.EPOLLIN)

    def unregister(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if self._peers.pop(fd, None) is not None:
            self._epoll.unregister(fd)

    def ready(self, wait_s: float) -> list[Any]:
        peers = self._peers
        # Without maxevents, epoll.poll returns at most 1,023 sockets a call.
        events = self._epoll.poll(wait_s, max(1, len(peers)))
        return [peers[fd] for fd, _ in events if fd in peers]

    def close(self) -> None:
        self._epoll.close()


class Fanout:
    """One group of subscribers (one server or one fleet) and its producer.

    Groups share one selector, so while one group is measured the other's
    sockets are still served (pings answered, nothing left to pile up)."""

    def __init__(self, spec: dict[str, Any], selector: ReadReady) -> None:
        self.spec = spec
        self.targets: list[dict[str, Any]] = spec["targets"]
        self.selector = selector
        self.subscribers: list[Subscriber] = []
        self.pending = 0  # opened, not yet live nor failed
        self.live = 0
        self.delivered = 0  # text messages received by subscribers after ack
        self.errors: list[str] = []
        self.failed = 0
        self.producer: Producer | None = None
        # One receive buffer for every socket: a fresh large buffer per recv
        # would cost an mmap and page faults each time.
        self._view = memoryview(bytearray(RECV_BYTES))
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {spec['token']}"}}
        self._init_frame = text_frame(init)
        self._ping_frame = text_frame({"type": "ping"})

    # --- the loop ---------------------------------------------------------------

    def poll(self, wait_s: float) -> int:
        """Read every socket epoll reports readable; how many it reported."""
        view = self._view
        ready = self.selector.ready(wait_s)
        # When epoll said so, every one of them had data: the time of that
        # answer bounds their arrival, without the reading of the others.
        now = time.monotonic()
        for peer in ready:
            try:
                size = peer.sock.recv_into(view)
            except BlockingIOError:
                continue
            except OSError as exc:
                peer.owner._lost(peer, repr(exc))
                continue
            if not size:
                peer.owner._lost(peer, "connection closed by the server")
                continue
            data = view[:size]
            if isinstance(peer, Subscriber):
                peer.owner._feed(peer, data, now)
            else:
                peer.owner._feed_producer(peer, data, now)
        return len(ready)

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for _ in range(1_000_000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.poll(min(remaining, 0.05))

    def pump_until_delivered(self, target: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        for _ in range(10_000_000):
            if self.delivered >= target:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready = self.poll(min(remaining, 0.05))
            if ready < COALESCE_BELOW and self.delivered < target:
                # Frames are trickling in: let some gather rather than wake
                # for each (see COALESCE_S).
                time.sleep(COALESCE_S)
        return self.delivered >= target

    def _lost(self, peer: Subscriber | Producer, reason: str) -> None:
        self.selector.unregister(peer.sock)
        peer.sock.close()
        if isinstance(peer, Producer):
            self.producer = None
            return
        if peer.state != LIVE:
            self.pending -= 1
        else:
            self.live -= 1
        peer.state = FAILED
        self.failed += 1
        if len(self.errors) < ERROR_SAMPLES:
            self.errors.append(f"subscriber {peer.index}: {reason}")

    # --- subscribers -------------------------------------------------------------

    def open_subscribers(self, first: int, count: int, seconds: float) -> None:
        """Open subscribers `first`..`first+count-1`, a bounded number at a time."""
        in_flight = int(self.spec.get("connect_concurrency", 50))
        deadline = time.monotonic() + seconds
        index, end = first, first + count
        for _ in range(10_000_000):
            if time.monotonic() >= deadline or (index >= end and self.pending == 0):
                break
            while index < end and self.pending < in_flight:
                self._open(index)
                index += 1
            self.poll(0.02)
        for subscriber in self.subscribers:
            if subscriber.state not in (LIVE, FAILED):
                self._lost(subscriber, "not subscribed in time")

    def _open(self, index: int) -> None:
        tag = index % len(self.targets)
        target = self.targets[tag]
        host, port = target["host"], int(target["port"])
        try:
            sock = socket.create_connection((host, port), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _send(sock, upgrade_request(host, port, target["path"], SUBPROTOCOL))
        except OSError as exc:
            self.failed += 1
            if len(self.errors) < ERROR_SAMPLES:
                self.errors.append(f"subscriber {index}: {exc!r}")
            return
        subscriber = Subscriber(self, sock, index, tag)
        self.subscribers.append(subscriber)
        self.selector.register(sock, subscriber)
        self.pending += 1

    def _feed(self, sub: Subscriber, data: memoryview, now: float) -> None:
        if sub.state == LIVE and not sub.buffer and len(data) > 2 and data[0] == 0x81:
            # The common case: exactly one whole, final, short text frame.
            length = data[1]
            if length < 126 and len(data) == 2 + length:
                self._on_text(sub, bytes(data[2:]), now)
                return
            if length == 126 and len(data) == 4 + int.from_bytes(data[2:4], "big"):
                self._on_text(sub, bytes(data[4:]), now)
                return
        buffer = sub.buffer
        buffer += data
        if sub.state == UPGRADING:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = bytes(buffer[: buffer.find(b"\r\n")])
            del buffer[: end + 4]
            if b" 101 " not in status_line + b" ":
                self._lost(sub, f"upgrade refused: {status_line!r}")
                return
            sub.state = INITIALISING
            _send(sub.sock, self._init_frame)
        try:
            frames = split_frames(buffer)
        except WireError as exc:
            self._lost(sub, repr(exc))
            return
        for opcode, final, payload in frames:
            if opcode == OP_TEXT and final:
                self._on_text(sub, payload, now)
            elif opcode == OP_PING:
                _send(sub.sock, encode_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self._lost(sub, f"closed by the server with code {code}: {payload[2:200]!r}")
                return
            elif opcode != OP_PONG:
                self._lost(sub, f"unexpected frame opcode {opcode} (final={final})")
                return

    def _on_text(self, sub: Subscriber, payload: bytes, now: float) -> None:
        state = sub.state
        if state == LIVE:
            sub.times.append(now)
            sub.payloads.append(payload)
            self.delivered += 1
        elif state == INITIALISING:
            if b'"connection_ack"' not in payload:
                self._lost(sub, f"no connection_ack: {payload[:200]!r}")
                return
            subscribe = {
                "id": f"s{sub.index}",
                "type": "subscribe",
                "payload": {"query": self.spec["query"], "variables": self.spec["variables"]},
            }
            _send(sub.sock, text_frame(subscribe) + self._ping_frame)
            sub.state = SUBSCRIBING
        elif state == SUBSCRIBING:
            if b'"pong"' in payload:
                sub.state = LIVE
                sub.joined = True
                self.pending -= 1
                self.live += 1
            else:  # an event (or an error) before the pong: keep it all the same
                sub.times.append(now)
                sub.payloads.append(payload)
                self.delivered += 1

    # --- producer ------------------------------------------------------------------

    def open_producer(self) -> None:
        target = self.spec["producer"]
        sock = socket.create_connection((target["host"], int(target["port"])), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.producer = Producer(self, sock)
        self.selector.register(sock, self.producer)

    def _feed_producer(self, producer: Producer, data: memoryview, now: float) -> None:
        producer.buffer += data
        parsed = parse_response(producer.buffer)
        if parsed is not None:
            producer.response = (parsed[0], parsed[1], now)

    def produce(self, raw: bytes, id_path: list[str], seconds: float) -> tuple[str, float]:
        """Send one producer request; the event id it created and when it was answered."""
        producer = self.producer
        if producer is None:
            raise WireError("the producer connection is closed")
        producer.response = None
        _send(producer.sock, raw)
        deadline = time.monotonic() + seconds
        for _ in range(10_000_000):
            if producer.response is not None or time.monotonic() >= deadline:
                break
            if self.producer is None:
                raise WireError("the producer connection was closed by the server")
            self.poll(0.05)
        if producer.response is None:
            raise WireError(f"the producer got no answer within {seconds}s")
        status, body, answered = producer.response
        event_id = _dig(json.loads(body), id_path) if status == 200 else None
        if event_id is None:
            raise WireError(f"producer failed: {status} {body[:300]!r}")
        return str(event_id), answered

    # --- the end -------------------------------------------------------------------

    def close(self) -> None:
        for peer in [*self.subscribers, self.producer]:
            if peer is None or peer.sock.fileno() < 0:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(peer.sock)
            peer.sock.close()


def _settled_rss(selector_owner: Fanout, pids: list[int], seconds: float = 6.0) -> int:
    """Total RSS once it stops moving (three close readings), or at the deadline."""
    readings: list[int] = []
    deadline = time.monotonic() + seconds
    for _ in range(1000):
        readings.append(sum(rss_kb(p) for p in pids))
        last = readings[-3:]
        if len(last) == 3 and max(last) - min(last) <= max(64, max(last) // 500):
            break
        if time.monotonic() >= deadline:
            break
        selector_owner.pump(0.25)
    return readings[-1]


def _connect(fanout: Fanout, spec: dict[str, Any], steps: int) -> dict[str, Any]:
    """Connect the group's subscribers; with memory pids, in `steps` equal
    steps after a warm-up of 10, reading the server's RSS after each: every
    step is one memory round (KB per subscriber it added)."""
    subscribers = int(spec["subscribers"])
    pids = [int(p) for p in spec.get("memory_pids", [])]
    connect_seconds = 60 + subscribers / 20
    started = time.monotonic()
    warm = min(10, max(1, subscribers // 10))
    fanout.open_subscribers(0, warm, connect_seconds)
    fanout.pump(0.3)
    result: dict[str, Any] = {"subscribers": subscribers}
    rounds: list[dict[str, Any]] = []
    before = _settled_rss(fanout, pids) if pids else 0
    rss_start = before
    rest = subscribers - warm
    steps = max(1, min(steps, rest)) if pids else 1
    opened = warm
    for step in range(steps):
        count = rest // steps + (1 if step < rest % steps else 0)
        live_before = fanout.live
        fanout.open_subscribers(opened, count, connect_seconds)
        opened += count
        if pids:
            after = _settled_rss(fanout, pids)
            added = max(1, fanout.live - live_before)
            rounds.append(
                {
                    "subscribers_added": added,
                    "rss_before_kb": before,
                    "rss_after_kb": after,
                    "kb_per_subscriber": round((after - before) / added, 2),
                }
            )
            before = after
    result["connect_s"] = round(time.monotonic() - started, 2)
    if pids:
        result["memory"] = {
            "subscribers": fanout.live,
            "rss_before_kb": rss_start,
            "rss_after_kb": before,
            "kb_per_subscriber": round((before - rss_start) / max(1, fanout.live - warm), 2),
            "rounds": rounds,
        }
    result["connected"] = fanout.live
    result["connect_failed"] = subscribers - fanout.live
    return result


class _Group:
    """One group's scenario state across rounds."""

    def __init__(self, spec: dict[str, Any], selector: ReadReady) -> None:
        self.spec = spec
        self.name = str(spec["name"])
        self.fanout = Fanout(spec, selector)
        producer_spec = spec["producer"]
        request = producer_spec["request"]
        headers = {"Content-Type": "application/json"}
        if request.get("token"):
            headers["Authorization"] = f"Bearer {request['token']}"
        self.raw = http_request(
            request.get("method", "POST"),
            request["path"],
            producer_spec["host"],
            int(producer_spec["port"]),
            body=json.dumps(request.get("json")).encode(),
            headers=headers,
        )
        self.id_path = list(spec["producer_id_path"])
        self.server_pids = [int(p) for p in spec.get("server_pids", [])]
        self.result: dict[str, Any] = {"name": self.name}
        self.sent: dict[str, float] = {}
        self.round_of: dict[str, int] = {}
        self.sync_id = ""
        self.rounds: list[dict[str, Any]] = []
        self.produced = 0  # events whose deliveries are awaited (the sync one included)

    def sync(self, event_timeout: float) -> None:
        """A first event proves every subscription live; it is counted, not timed."""
        fanout = self.fanout
        fanout.open_producer()
        self.sync_id, _ = fanout.produce(self.raw, self.id_path, event_timeout)
        self.produced = 1
        self.result["sync_ok"] = fanout.pump_until_delivered(
            fanout.live * self.produced, max(event_timeout, 30)
        )

    def run_round(self, index: int, events: int, budget: float, event_timeout: float) -> None:
        fanout = self.fanout
        connected = fanout.live
        complete: list[float] = []
        timeouts = 0
        cpu0, server0 = own_cpu_seconds(), processes_cpu_seconds(self.server_pids)
        started = time.monotonic()
        deadline = started + budget
        produced = 0
        for _ in range(events):
            if time.monotonic() >= deadline:
                break
            event_id, answered = fanout.produce(self.raw, self.id_path, event_timeout)
            self.sent[event_id] = answered
            self.round_of[event_id] = index
            produced += 1
            self.produced += 1
            if fanout.pump_until_delivered(connected * self.produced, event_timeout):
                complete.append(time.monotonic() - answered)
            else:
                timeouts += 1
        elapsed = time.monotonic() - started
        cpu1, server1 = own_cpu_seconds(), processes_cpu_seconds(self.server_pids)
        self.rounds.append(
            {
                "round": index,
                "events": produced,
                "event_timeouts": timeouts,
                "event_complete_p50_ms": latency_summary(complete)["p50_ms"],
                "measure_s": round(elapsed, 2),
                "client_cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 1) if elapsed else None,
                "server_cpu_pct": (
                    round(100 * (server1 - server0) / elapsed, 1)
                    if self.server_pids and elapsed
                    else None
                ),
            }
        )

    def finish(self, subscriber_id_path: list[str]) -> dict[str, Any]:
        scored = score(self.fanout, self.sent, self.sync_id, subscriber_id_path)
        by_event: dict[str, list[float]] = scored.pop("by_event")
        for summary in self.rounds:
            delays = [
                d
                for event_id, values in by_event.items()
                if self.round_of.get(event_id) == summary["round"]
                for d in values
            ]
            summary.update(latency_summary(delays))
            summary["deliveries"] = len(delays)
        self.result.update(scored)
        self.result["events"] = len(self.sent)
        self.result["rounds"] = self.rounds
        return self.result


def _together(spec: dict[str, Any]) -> bool:
    """Whether every group's sockets fit under the open-files limit at once."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = int(spec["subscribers"]) * len(spec["groups"]) + 1024
    return soft == resource.RLIM_INFINITY or soft >= needed


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Groups (e.g. Lockbox and its baseline) connect one after the other,
    then take turns, round after round: each round produces `events` events
    on one group, then on the next (the order alternates between rounds), so
    a round's figures for every group come from the same minute.

    Where the open-files limit cannot hold every group's sockets at once,
    each group runs all its rounds in turn instead (`groups_together` false):
    round i of one group is then compared with round i of the other, minutes
    apart."""
    rounds = int(spec.get("rounds", 1))
    events = int(spec["events"])
    budget = float(spec.get("budget_seconds", 300))
    event_timeout = float(spec.get("event_timeout", 15))
    id_path = list(spec["subscriber_id_path"])
    together = _together(spec)
    selector = ReadReady()
    groups = [_Group({**spec, **group}, selector) for group in spec["groups"]]
    try:
        batches = [groups] if together else [[group] for group in groups]
        finished: list[dict[str, Any]] = []
        for batch in batches:
            for group in batch:
                group.result.update(_connect(group.fanout, group.spec, rounds))
            for group in batch:
                group.sync(event_timeout)
            for index in range(rounds):
                order = batch if index % 2 == 0 else batch[::-1]
                for group in order:
                    group.run_round(index, events, budget, event_timeout)
            # Whatever is still in flight gets a bounded grace period, then a
            # moment more to catch any duplicate.
            for group in batch:
                fanout = group.fanout
                fanout.pump_until_delivered(fanout.live * group.produced, event_timeout)
            batch[0].fanout.pump(0.3)
            for group in batch:
                finished.append(group.finish(id_path))
                if not together:
                    group.fanout.close()
        return {"groups_together": together, "groups": finished}
    finally:
        for group in groups:
            group.fanout.close()
        selector.close()


def score(
    fanout: Fanout, sent: dict[str, float], sync_id: str, id_path: list[str]
) -> dict[str, Any]:
    """Decode everything received; count missed, duplicated, unexpected; latencies."""
    expected = {*sent, sync_id}
    latencies: list[float] = []
    by_event: dict[str, list[float]] = {}
    by_server: dict[int, list[float]] = {}
    missed = duplicated = unexpected = bad = early = 0
    samples = list(fanout.errors)
    for sub in fanout.subscribers:
        if not sub.joined:
            continue
        seen: Counter[str] = Counter()
        for received_at, payload in zip(sub.times, sub.payloads, strict=True):
            message = json.loads(payload)
            event_id = _dig(message, id_path)
            if message.get("type") != "next" or event_id is None:
                bad += 1
                if len(samples) < ERROR_SAMPLES:
                    samples.append(payload[:300].decode(errors="replace"))
                continue
            event_id = str(event_id)
            seen[event_id] += 1
            answered = sent.get(event_id)
            if answered is not None and seen[event_id] == 1:
                delay = received_at - answered
                if delay < 0:  # read in the same poll as the producer's answer
                    early += 1
                    delay = 0.0
                latencies.append(delay)
                by_event.setdefault(event_id, []).append(delay)
                by_server.setdefault(sub.tag, []).append(delay)
        missed += len(expected - seen.keys())
        duplicated += sum(n - 1 for n in seen.values() if n > 1)
        unexpected += sum(1 for key in seen if key not in expected)
    return {
        **latency_summary(latencies),
        "by_event": by_event,
        "by_server": [
            {"server": tag, "deliveries": len(values), **latency_summary(values)}
            for tag, values in sorted(by_server.items())
        ],
        "deliveries": len(latencies),
        "missed": missed,
        "duplicated": duplicated,
        "unexpected": unexpected,
        "received_before_response": early,
        "errors": bad + fanout.failed,
        "error_samples": samples[:ERROR_SAMPLES],
    }
