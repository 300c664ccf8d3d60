"""Run a batch producer in a thread, a few batches ahead of its consumer.

Reading a table (network wait, CSV parsing) and transforming and writing the previous batch
then overlap; the queue is small, so memory stays bounded by a few batches. Parsing and network
waits release the GIL, so the overlap is real on two cores.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_SECONDS = 0.1


def prefetch(source: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Items of ``source``, produced in a thread at most ``depth`` items ahead.

    Closing the returned generator early stops the producer between two items and closes
    ``source`` in its own thread, so its resources (a COPY in progress) are released there.
    """
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                if not _put(items, item, stop):
                    return
            _put(items, _DONE, stop)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            _put(items, exc, stop)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="governor-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


def _put(items: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            items.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False
