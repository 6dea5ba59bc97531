"""A secure message from a practitioner to a patient is announced when it is sent: created
sent (POST /fhir/Communication), or a draft updated to sent (PUT /fhir/Communication/{id}).

A Communication is a message to the patient when it is being or has been sent (status
completed or in-progress), its subject is a Patient and its recipients include that Patient.
When its sender is the acting user's own Practitioner (users.practitioner_id), the patient's
accounts are told "you have a new secure message", From that practitioner
(NotificationService.message_notice, PF-20), with a link of route words and the message's id.

The notice is queued right after the create commits: the gate's create writes and audits in
a transaction of its own and offers no hook into it, so a failed create sends nothing, and
everything the notice could refuse is checked before the create, so a created message is not
left unannounced for want of a name. Any other Communication (between practitioners, a draft,
one the patient sends) is stored as it is, with no notice.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from carevault.audit.models import Action
from carevault.errors import CareVaultError, Forbidden, Gone, NotFound, Unprocessable
from carevault.messaging.service import MESSAGE_SENDERS
from carevault.messaging.smtp import user_display_name
from carevault.privacy.gate import Gate, ResourceView
from carevault.runtime import Runtime
from carevault.web.practitioner_names import NameOf, practitioner_names

RTYPE = "Communication"
SENDING = frozenset({"completed", "in-progress"})
"""The statuses of a message that went (or is going) to its recipients; drafts send nothing."""
MESSAGE_NAMES = "secure message: the sender's name"
"""The system actor reading the sender's name for the From header."""
_ID = r"[A-Za-z0-9.-]{1,64}"
_PATIENT = re.compile(rf"^Patient/({_ID})$")
_PRACTITIONER = re.compile(rf"^Practitioner/({_ID})(?:/_history/\d+)?$")
# Any other way of naming a practitioner (an absolute URL, a PractitionerRole, a typed
# identifier) cannot be matched to the acting user, so it is not taken as theirs.
_NAMES_A_PRACTITIONER = re.compile(r"(?:^|/)Practitioner(?:Role)?/")
_PRACTITIONER_TYPES = frozenset({"Practitioner", "PractitionerRole"})


@dataclass(frozen=True)
class PatientMessage:
    patient_id: str
    sender: str | None
    """The Practitioner id the message names as its sender, if it names one as
    `Practitioner/{id}`; see `names_practitioner` for the other ways."""
    names_practitioner: bool
    """The sender is a practitioner, in any form."""


def patient_message(body: Any) -> PatientMessage | None:
    """The message to a patient this Communication is, or None. Malformed bodies are None:
    the gate's validation answers them."""
    if not isinstance(body, dict) or body.get("status") not in SENDING:
        return None
    subject = _reference(body.get("subject"))
    found = _PATIENT.match(subject or "")
    recipients = body.get("recipient")
    if found is None or not isinstance(recipients, list):
        return None
    if subject not in {_reference(r) for r in recipients}:
        return None
    sender = body.get("sender")
    reference = _reference(sender) or ""
    own = _PRACTITIONER.match(reference)
    typed = isinstance(sender, dict) and sender.get("type") in _PRACTITIONER_TYPES
    names = bool(own or typed or _NAMES_A_PRACTITIONER.search(reference))
    return PatientMessage(found[1], own[1] if own else None, names)


def create(gate: Gate, rt: Runtime, body: Any, condition: str | None) -> tuple[ResourceView, bool]:
    """Create a Communication (conditionally with If-None-Exist); returns the resource and
    whether it was created. A message to the patient from the actor is announced to them."""
    message = patient_message(body)
    names: NameOf | None = None
    if message is not None:
        try:
            names = _announce_as_actor(gate, rt, message)
        except CareVaultError as exc:
            gate.audit_refusal(Action.CREATE, RTYPE, (), exc, "message to a patient")
            raise
    if condition is None:
        view, created = gate.create(RTYPE, body), True
    else:
        view, created = gate.create_unless_exists(RTYPE, body, condition)
    if message is not None and names is not None and created:
        link = _link(view.resource_id)
        rt.notifications.message_notice(gate.actor, message.patient_id, names, link=link)
    return view, created


def update(
    gate: Gate, rt: Runtime, rid: str, body: Any, if_match: int | None
) -> tuple[ResourceView, bool]:
    """Update a Communication; a message to the patient that was not sent before (a draft
    the practitioner now sends, or a new id) is announced, once. Re-saving a message that
    was sent already announces nothing again."""
    message = patient_message(body)
    if message is None:
        return gate.update(RTYPE, rid, body, if_match=if_match)
    try:
        names = _announce_as_actor(gate, rt, message)
        before = _previous(gate, rid) if names is not None else None
    except CareVaultError as exc:
        gate.audit_refusal(Action.UPDATE, RTYPE, (rid,), exc, "message to a patient")
        raise
    view, created = gate.update(RTYPE, rid, body, if_match=if_match)
    if names is not None and patient_message(before) is None:
        link = _link(view.resource_id)
        rt.notifications.message_notice(gate.actor, message.patient_id, names, link=link)
    return view, created


def _previous(gate: Gate, rid: str) -> Any:
    """The stored message (None when the id is new, or it was deleted): was it sent?"""
    try:
        found = gate.read(RTYPE, rid)
    except (NotFound, Gone):
        return None
    return orjson.loads(found.body or b"{}")


def _announce_as_actor(gate: Gate, rt: Runtime, message: PatientMessage) -> NameOf | None:
    """The name lookup to announce this message with; None: it is not the actor's to announce.

    A message to a patient that names a practitioner other than the actor's own as its sender
    is refused, not stored unannounced: the patient would read it (and a notice would come)
    as that practitioner's, and the clinic's record would say so, when someone else wrote it.
    Staff who write for a practitioner say so in the body, or keep a draft (status
    preparation) for the practitioner to send.
    """
    if not message.names_practitioner:
        return None  # sent by the patient, an organization or unnamed: not as a practitioner
    actor = gate.actor
    own = rt.notifications.practitioner_of(actor) if actor.role in MESSAGE_SENDERS else None
    if own is None or message.sender != own:
        raise Forbidden(
            "a message to a patient is sent as its sender: name your own Practitioner "
            "as the sender, or save it as a draft (status preparation) for them to send"
        )
    names = practitioner_names(rt, actor.tenant_id, MESSAGE_NAMES)
    if not user_display_name(names(own) or ""):
        # Refused before the message is stored: message_notice would refuse to send it
        # without a name (never as the practice's own notice), leaving it unannounced.
        raise Unprocessable(
            "your Practitioner record has no name, and a message to a patient is sent From "
            "its sender: add a name to it first"
        )
    return names


def _link(rid: str) -> str:
    """The message's page when its id is a server-made uuid; else the inbox. An id a client
    chose (PUT to a new id) may say something about the patient: it stays out of mail."""
    try:
        uuid.UUID(rid)
    except ValueError:
        return "/portal/messages"
    return f"/portal/messages/{rid}"


def _reference(value: Any) -> str | None:
    reference = value.get("reference") if isinstance(value, dict) else None
    return reference if isinstance(reference, str) else None
