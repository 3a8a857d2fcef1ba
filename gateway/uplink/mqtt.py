"""The MQTT connection to the broker (paho-mqtt 2.x), one per device.

paho runs its own network thread (`loop_start`); this class hands its callbacks back to the
asyncio loop with `call_soon_threadsafe`, so `publish` is awaited on the loop and returns only
after the broker's PUBACK. paho keeps unacknowledged messages in memory and resends them after a
reconnect, but they die with the process: the outbox keeps every row until `publish` returned.
A fresh JWT is minted before every (re)connect in `on_pre_connect`, so an expiring token is
just one more reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.errors import ClockNotSynced, UplinkError

log = logging.getLogger("pitbox.uplink")


class MqttPublisher:
    """`connect()` then `await publish(topic, payload)` (QoS 1, returns after PUBACK)."""

    def __init__(self, *, host: str, port: int, client_id: str, token: Callable[[], str],
                 inflight: int = 20, tls: bool = False, ca_file: str = "",
                 keepalive_s: int = 60) -> None:
        self.host, self.port = host, port
        self._token = token
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=paho.MQTTv311, clean_session=True)
        self._client.max_inflight_messages_set(inflight)
        self._client.reconnect_delay_set(min_delay=1, max_delay=32)
        if tls:
            self._client.tls_set(ca_certs=ca_file or None, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self._client.on_pre_connect = self._on_pre_connect
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._keepalive = keepalive_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._early: set[int] = set()  # PUBACKs that beat the registration of their future
        self.connected = asyncio.Event()
        self.last_error = ""
        self.stats = {"published": 0, "connects": 0, "refused": 0}

    def connect(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(self.host, self.port, keepalive=self._keepalive)
        self._client.loop_start()

    async def publish(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise UplinkError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                fut.set_result(None)
            else:
                self._waiting[info.mid] = fut
        await fut
        self.stats["published"] += 1

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            for fut in self._waiting.values():
                if self._loop is not None and not fut.done():
                    self._loop.call_soon_threadsafe(_fail, fut, UplinkError("uplink closed"))
            self._waiting.clear()

    # paho's thread below
    def _on_pre_connect(self, client: paho.Client, userdata: Any) -> None:
        try:
            client.username_pw_set("unused", self._token())
        except ClockNotSynced as exc:
            # Connecting would only be refused; paho retries with backoff, and we mint again.
            self.last_error = str(exc)
            log.warning("%s", exc)
            client.username_pw_set("unused", "")

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self.stats["refused"] += 1
            self.last_error = f"broker refused the connection: {reason}"
            log.warning("uplink: %s", self.last_error)
            return
        self.stats["connects"] += 1
        log.info("uplink: connected to %s:%d", self.host, self.port)
        self._set_connected(True)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        if reason != 0:
            log.warning("uplink: disconnected (%s); paho reconnects with backoff", reason)
        self._set_connected(False)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        with self._lock:
            fut = self._waiting.pop(mid, None)
            if fut is None:
                self._early.add(mid)
                return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(_resolve, fut)

    def _set_connected(self, up: bool) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.set if up else self.connected.clear)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _fail(fut: asyncio.Future[None], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)

