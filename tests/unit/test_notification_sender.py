"""The sender thread runs its extra steps (held disclosure notices) before each delivery round."""

from __future__ import annotations

import threading
from typing import Any, cast

from carevault.messaging.sender import NotificationSender


class Service:
    def __init__(self, order: list[str], done: threading.Event) -> None:
        self.order, self.done = order, done

    def deliver_due(self) -> None:
        self.order.append("deliver")
        self.done.set()


def test_steps_run_before_each_delivery_round_and_a_failing_step_does_not_stop_it() -> None:
    order: list[str] = []
    done = threading.Event()

    def release() -> None:
        order.append("release")

    sender = NotificationSender(
        cast(Any, Service(order, done)), poll_seconds=0.05, before_each_round=(release,)
    )
    sender.start()
    assert done.wait(10)
    sender.stop()
    assert order[:2] == ["release", "deliver"]

    twice = threading.Event()
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        if len(calls) >= 2:
            twice.set()
        raise RuntimeError("one bad round")

    failing = NotificationSender(
        cast(Any, Service([], threading.Event())), poll_seconds=0.05, before_each_round=(broken,)
    )
    failing.start()
    assert twice.wait(10)  # the thread went on after a failed round
    failing.stop()
