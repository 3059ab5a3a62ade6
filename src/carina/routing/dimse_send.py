"""Sending a transfer's instances to a DICOM node with C-STORE (PS3.4 B.2), over the shared
sending code of :mod:`carina.dimse.sending`: one association for up to 128 presentation
contexts (usually the whole transfer), each object as stored when the node accepts its
syntax, else converted without loss (the transfer-syntax fallback, PS3.5 10).

A node's preferred transfer syntax is proposed first for every SOP class; when the node
accepts it, objects are sent in it (converted when stored otherwise).

What failed is sorted into passing and lasting reasons (docs/routing.md, "Retries"):

* the association could not be made, was rejected, aborted or timed out, or the node
  answered *Out of Resources* (A7xx): the instances not delivered stay to send and the
  attempt ends (retried later);
* any other failure status (e.g. 0122 *SOP Class not Supported*, A9xx, Cxxx), or no
  presentation context for the object's SOP class: that instance fails, with the reason,
  and the others go on.
"""

from __future__ import annotations

from pydicom.uid import UID
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context

from carina.dimse.actions import NoContextError, node_association
from carina.dimse.models import RemoteNode
from carina.dimse.scu import DimseError
from carina.dimse.sending import (
    MAX_CONTEXTS,
    PROPOSED_FALLBACK,
    UNCOMPRESSED_FALLBACK,
    Outcome,
    Sender,
    StoredInstance,
    batches_with_contexts,
    can_encode,
    is_alive,
)
from carina.routing import conf
from carina.routing.runner import ItemOutcome, Record, ToSend


def _busy(status: int | None) -> bool:
    """Refused: Out of Resources (PS3.4 B.2.3, A7xx): the node may accept it later."""
    return status is not None and status & 0xFF00 == 0xA700


class PreferringSender(Sender):
    """A :class:`Sender` that sends in the node's preferred transfer syntax when the node
    accepted it for the SOP class and the object can be converted to it without loss."""

    def __init__(self, assoc: Association, peer_name: str, preferred: str) -> None:
        super().__init__(assoc, peer_name)
        self.preferred = UID(preferred) if preferred else None
        self._current: StoredInstance | None = None

    def send(self, instance: StoredInstance, message_id: int) -> Outcome:
        self._current = instance
        return super().send(instance, message_id)

    def accepted_syntaxes(self, sop_class: str) -> list[UID]:
        accepted = super().accepted_syntaxes(sop_class)
        preferred, current = self.preferred, self._current
        if preferred is None or current is None or preferred not in accepted:
            return accepted
        if (
            preferred == current.transfer_syntax_uid
            or preferred in UNCOMPRESSED_FALLBACK
            or (current.rows is not None and can_encode(preferred))
        ):
            return [preferred]
        return accepted


def _with_preferred(
    contexts: list[PresentationContext], preferred: str
) -> list[PresentationContext]:
    """The batch's contexts plus, per SOP class, one proposing the preferred syntax alone
    (so that the node's answer about it is unambiguous), within the 128 contexts allowed."""
    if not preferred:
        return contexts
    proposed = {(c.abstract_syntax, tuple(c.transfer_syntax)) for c in contexts}
    extra = []
    for sop_class in dict.fromkeys(c.abstract_syntax or "" for c in contexts):
        if (sop_class, (preferred,)) not in proposed:
            extra.append(build_context(sop_class, [preferred]))
    if len(contexts) + len(extra) <= MAX_CONTEXTS:
        return [*extra, *contexts]
    # No room: the fallback contexts propose the preferred syntax first instead.
    fallback = [str(s) for s in PROPOSED_FALLBACK]
    changed = []
    for context in contexts:
        syntaxes = [str(s) for s in context.transfer_syntax]
        if syntaxes == fallback:
            syntaxes = list(dict.fromkeys([preferred, *syntaxes]))
        changed.append(build_context(context.abstract_syntax or "", syntaxes))
    return changed


#: How often (seconds) the reactor of a sending association looks for work. pynetdicom
#: sleeps 1 ms between looks, and every PDU of every C-STORE waits for one: 3–5 ms per object.
#: An association opened to send is busy until it is released, so it looks ten times as
#: often (measured: about a third more instances per second, docs/routing.md).
SENDING_POLL = 0.0001


def busy_polling(assoc: Association) -> None:
    """Make ``assoc``'s reactor (pynetdicom's DUL thread) poll every :data:`SENDING_POLL`."""
    assoc.dul._run_loop_delay = SENDING_POLL


def send_cstore(node: RemoteNode, items: list[ToSend], record: Record) -> str:
    """Send ``items`` to ``node``; see the module's docstring."""
    by_uid = {item.stored.sop_instance_uid: item for item in items}
    message_id = 0
    for group, contexts in batches_with_contexts([item.stored for item in items]):
        proposed = _with_preferred(contexts, node.preferred_transfer_syntax)
        try:
            with node_association(node, proposed, conf.network_timeout()) as assoc:
                busy_polling(assoc)
                sender = PreferringSender(assoc, node.name, node.preferred_transfer_syntax)
                for instance in group:
                    if not sender.usable:
                        return sender.why_unusable
                    message_id = message_id % 65535 + 1
                    outcome = sender.send(instance, message_id)
                    item = by_uid[instance.sop_instance_uid]
                    result = _classify(item, outcome, assoc)
                    if not record(result):
                        return ""  # cancelled
                    if result.retry:
                        return result.reason
        except NoContextError as exc:
            # Lasting: every instance of this batch fails with the reason; the rest go on.
            for instance in group:
                item = by_uid[instance.sop_instance_uid]
                if not record(ItemOutcome(item.item_id, False, reason=_no_context(instance, exc))):
                    return ""
        except DimseError as exc:
            return str(exc)
    return ""


def _no_context(instance: StoredInstance, exc: NoContextError) -> str:
    sop_class = UID(instance.sop_class_uid)
    return f"{exc}: no presentation context for {sop_class.name}"


def _classify(item: ToSend, outcome: Outcome, assoc: Association) -> ItemOutcome:
    if outcome.category != Outcome.FAILURE:
        return ItemOutcome(
            item.item_id,
            True,
            status=outcome.status,
            sent_as=outcome.sent_as,
            size=item.size,
        )
    retry = _busy(outcome.status) or (outcome.status is None and not is_alive(assoc))
    return ItemOutcome(item.item_id, False, retry, outcome.status, outcome.reason)
