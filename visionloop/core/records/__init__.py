"""The records of the core: dataclasses, enums and small value types, one module per concept.

They are the bottom of the core: a record module imports only other records, ``visionloop.core.entities``,
``visionloop.errors`` and the standard library. ``ports.py`` describes the outside world in these
types; the use-case modules (``review.py``, ``runs.py`` …) import ports and records, never the reverse
(tests/test_architecture.py checks it)."""
