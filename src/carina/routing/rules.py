"""Automatic forwarding: which stored instances match a rule, and sending them once
(docs/routing.md, "Forwarding rules").

* When an instance is stored, :func:`note_arrival` checks it against the hospital's enabled
  rules and records a :class:`RuleMatch` for each rule it matches (unique per rule and
  instance). A rule "on every instance" has the match forwarded at once (a task).
* A hospital found without enabled rules is not asked again for
  :data:`NO_RULES_RECHECK_SECONDS` (an ingest of hundreds of objects per second would
  otherwise ask for each); a rule saved or deleted in this process forgets that at once, and
  one saved by another process is found by the next check or by the sweep.
* The sweep (:func:`sweep_rules`, on every beat) also finds matches the arrival check could
  not record (a process killed between the ingest's commit and the check): it re-checks the
  instances received since its last run, minus a margin.
* :func:`forward` turns a rule's pending matches into transfers, one per destination and
  study, and marks them forwarded in the same transaction: an instance is forwarded once per
  rule, even across restarts. A rule "when stable" forwards a study's matches once no
  instance arrived in the study for ``stable_seconds``.

Matching uses the shared query engine at the IMAGE level (:mod:`carina.archive.query`), so a
condition means what the same key means in C-FIND and QIDO-RS.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from carina.archive import query
from carina.archive.models import Instance, Source
from carina.routing import conf
from carina.routing.models import ForwardingRule, Level, Origin, RuleMatch, Transfer, Trigger
from carina.tenancy.models import Hospital

logger = logging.getLogger(__name__)


def spec_for(
    modality: str, body_part: str, study_description: str, keys: dict[str, str]
) -> query.QuerySpec:
    """The query spec of a rule's conditions (raises QueryError, e.g. an unknown key)."""
    wanted = dict(keys)
    for keyword, value in (
        ("Modality", modality),
        ("BodyPartExamined", body_part),
        ("StudyDescription", study_description),
    ):
        if value:
            wanted[keyword] = value
    spec = query.QuerySpec("IMAGE", wanted)
    if spec.unsupported:
        raise query.QueryError(
            f"{', '.join(sorted(spec.unsupported))}: not an indexed key Carina can match", None
        )
    return spec


def matching(rule: ForwardingRule, hospital: Hospital) -> QuerySet[Instance]:
    """The hospital's instances that match the rule's conditions."""
    spec = spec_for(rule.modality, rule.body_part, rule.study_description, rule.keys or {})
    instances = query.queryset(spec, hospital)
    if rule.calling_ae:
        instances = instances.filter(source=Source.DIMSE, source_detail=rule.calling_ae)
    return instances


def _record_matches(rule: ForwardingRule, rows: list[tuple[int, int]]) -> None:
    """Record (instance, study) matches of ``rule``; those already there are kept."""
    RuleMatch.objects.bulk_create(
        [RuleMatch(rule=rule, instance_id=pk, study_id=study) for pk, study in rows],
        ignore_conflicts=True,
    )


#: Seconds a hospital found without enabled rules is taken to have none (module docstring).
NO_RULES_RECHECK_SECONDS = 5.0
#: Hospitals found without enabled rules, with the ``time.monotonic()`` of the check.
_without_rules: dict[int, float] = {}


def forget_rule_checks(*args: Any, **kwargs: Any) -> None:
    """Ask again for every hospital's rules (a rule was saved or deleted)."""
    _without_rules.clear()


def _enabled_rules(hospital_id: int) -> list[ForwardingRule]:
    checked = _without_rules.get(hospital_id)
    if checked is not None and time.monotonic() - checked < NO_RULES_RECHECK_SECONDS:
        return []
    rules = list(ForwardingRule.objects.for_hospital(hospital_id).filter(enabled=True))
    if rules:
        _without_rules.pop(hospital_id, None)
    else:
        _without_rules[hospital_id] = time.monotonic()
    return rules


def note_arrival(hospital_id: int, instance_id: int) -> None:
    """Check a newly stored instance against the hospital's enabled rules (the receiver of
    ``instance_stored``); never raises into the ingest."""
    try:
        rules = _enabled_rules(hospital_id)
        if not rules:
            return
        hospital = Hospital.objects.get(pk=hospital_id)
        immediate: list[tuple[int, int]] = []
        for rule in rules:
            try:
                row = (
                    matching(rule, hospital)
                    .filter(pk=instance_id)
                    .values_list("pk", "series__study_id")
                    .first()
                )
            except query.QueryError:
                logger.warning("rule %s cannot be matched; fix its conditions", rule.name)
                continue
            if row is None:
                continue
            with transaction.atomic():
                _record_matches(rule, [row])
            if rule.trigger == Trigger.INSTANCE:
                immediate.append((rule.pk, row[1]))
        if immediate:
            from carina.routing.tasks import forward_rule

            for rule_id, study_id in immediate:
                forward_rule.apply_async((rule_id, study_id), retry=False)
    except Exception:
        # The sweep finds the instance again; the ingest must not fail because of routing.
        logger.exception("checking instance %s against the forwarding rules failed", instance_id)


def scan(rule: ForwardingRule, now: dt.datetime) -> int:
    """Record the matches among instances received since the rule's last scan (minus the
    margin); returns how many were new."""
    since = rule.created_at
    if rule.scanned_until is not None:
        since = max(since, rule.scanned_until - conf.scan_lag())
    known = RuleMatch.objects.filter(rule=rule).values("instance_id")
    rows = list(
        matching(rule, rule.hospital)
        .filter(received_at__gte=since, received_at__lte=now)
        .exclude(pk__in=known)
        .values_list("pk", "series__study_id")
    )
    with transaction.atomic():
        if rows:
            _record_matches(rule, rows)
        ForwardingRule.objects.for_hospital(rule.hospital_id).filter(pk=rule.pk).update(
            scanned_until=now
        )
    return len(rows)


def forward(
    rule_id: int, study_id: int | None = None, *, now: dt.datetime | None = None
) -> list[Transfer]:
    """Send the rule's pending matches (of one study, or all) that are due; returns the
    transfers created."""
    from carina.routing.actions import Requester, check_destination, create_transfers

    now = now or timezone.now()
    created: list[Transfer] = []
    with transaction.atomic():
        rule = (
            ForwardingRule.objects.all_hospitals()
            .select_for_update()
            .select_related("hospital")
            .filter(pk=rule_id, enabled=True)
            .first()
        )
        if rule is None:
            return created
        pending = RuleMatch.objects.filter(rule=rule, forwarded_at__isnull=True)
        if study_id is not None:
            pending = pending.filter(study_id=study_id)
        if rule.trigger == Trigger.STABLE:
            quiet_since = now - dt.timedelta(seconds=rule.stable_seconds)
            pending = pending.filter(study__updated_at__lte=quiet_since)
        by_study: dict[int, list[int]] = defaultdict(list)
        match_ids: list[int] = []
        for match_id, study, instance in pending.values_list("pk", "study_id", "instance_id"):
            by_study[study].append(instance)
            match_ids.append(match_id)
        if not match_ids:
            return created
        destinations = []
        for node in rule.destination_nodes():
            try:
                check_destination(node)
            except ValueError as exc:
                logger.warning("rule %s: %s", rule.name, exc)
                continue
            destinations.append(node)
        requester = Requester(origin=Origin.RULE, name=f"rule {rule.name}", rule=rule)
        for instance_ids in by_study.values():
            instances = list(
                Instance.objects.for_hospital(rule.hospital)
                .filter(pk__in=instance_ids)
                .select_related("series__study__patient")
                .order_by("series__series_number", "series_id", "instance_number", "pk")
            )
            if instances and destinations:
                created += create_transfers(
                    rule.hospital,
                    destinations,
                    instances,
                    level=Level.INSTANCES,
                    object_uid="",
                    requester=requester,
                )
        RuleMatch.objects.filter(pk__in=match_ids).update(forwarded_at=now)
    for transfer in created:
        logger.info(
            "rule %s: %d instance(s) of study %s to %s (transfer %s)",
            rule.name,
            transfer.total,
            transfer.study_instance_uid,
            transfer.destination_name,
            transfer.pk,
        )
    return created


def sweep_rules(now: dt.datetime | None = None) -> list[Transfer]:
    """Scan every enabled rule for missed matches and forward what is due."""
    now = now or timezone.now()
    created: list[Transfer] = []
    rules: Any = (
        ForwardingRule.objects.all_hospitals().filter(enabled=True).select_related("hospital")
    )
    for rule in list(rules):
        try:
            scan(rule, now)
        except query.QueryError:
            logger.warning("rule %s cannot be matched; fix its conditions", rule.name)
            continue
        if RuleMatch.objects.filter(rule=rule, forwarded_at__isnull=True).exists():
            created += forward(rule.pk, now=now)
    return created
