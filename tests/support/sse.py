"""A small Server-Sent Events client for the tests: one stream over http.client (HTTP/1.1, chunked), parsed line by
line as the SSE spec says (fields, comments, blank line dispatches). Every read waits at most `timeout` seconds."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse


@dataclass
class Event:
    event: str
    data: str
    id: str | None
    retry: int | None
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Comment:
    text: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class Retry:
    ms: int


Item = Event | Comment | Retry


class SseStream:
    """GET a stream; `status`, `headers` and (for a non-200) `body` are read at once."""

    def __init__(
        self, base: str, path: str, token: str | None, last_event_id: str | None = None, timeout: float = 10.0
    ) -> None:
        url = urlparse(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.body = self.resp.read() if self.status != 200 else b""
        self.ended = self.status != 200
        self._fields: dict[str, str] = {}
        self._data: list[str] = []

    def settimeout(self, seconds: float) -> None:
        assert self.conn.sock is not None
        self.conn.sock.settimeout(seconds)

    def next_item(self) -> Item | None:
        """The next event, comment or retry field; None once the server ended the stream."""
        while not self.ended:
            raw = self.resp.readline()
            if not raw:
                self.ended = True
                return None
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if self._data or self._fields.get("event"):
                    item = Event(
                        self._fields.get("event", "message"),
                        "\n".join(self._data),
                        self._fields.get("id"),
                        int(self._fields["retry"]) if "retry" in self._fields else None,
                    )
                    self._fields, self._data = {}, []
                    return item
                if "retry" in self._fields:
                    item_retry = Retry(int(self._fields["retry"]))
                    self._fields = {}
                    return item_retry
                continue
            if line.startswith(":"):
                return Comment(line[1:].strip())
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self._data.append(value)
            else:
                self._fields[name] = value
        return None

    def next_event(self) -> Event | None:
        """The next event, skipping comments and retry hints; None once the stream ended."""
        while True:
            item = self.next_item()
            if item is None or isinstance(item, Event):
                return item

    def events_until_end(self) -> list[Event]:
        out = []
        while (event := self.next_event()) is not None:
            out.append(event)
        return out

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SseStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
