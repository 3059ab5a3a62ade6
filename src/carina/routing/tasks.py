"""Celery tasks of routing. Each takes an ID, locks its row and is safe to run twice
(docs/routing.md, "Background work")."""

from __future__ import annotations

import logging
from typing import Any

from carina.config.celery import app
from carina.routing import queue, rules, runner

logger = logging.getLogger(__name__)


def _send_transfer(transfer_id: int) -> str | None:
    """One attempt of transfer ``transfer_id`` (nothing if it is not queued and due)."""
    transfer = runner.run_transfer(transfer_id)
    return transfer.status if transfer is not None else None


def _forward_rule(rule_id: int, study_id: int | None = None) -> int:
    """Forward the pending matches of a rule (in one study); returns the transfers made."""
    return len(rules.forward(rule_id, study_id))


def _sweep() -> int:
    """The beat's sweep: resume and enqueue transfers, then forwarding rules."""
    enqueued = queue.recover()
    created = rules.sweep_rules()
    if enqueued or created:
        logger.info("sweep: %d transfer(s) enqueued, %d forwarded", enqueued, len(created))
    return enqueued + len(created)


# Registered explicitly: Celery's decorator is untyped.
send_transfer: Any = app.task(name="carina.routing.send_transfer", ignore_result=True)(
    _send_transfer
)
forward_rule: Any = app.task(name="carina.routing.forward", ignore_result=True)(_forward_rule)
sweep: Any = app.task(name="carina.routing.sweep", ignore_result=True)(_sweep)
