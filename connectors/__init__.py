"""Connectors to external systems (Kafka); each imports streamal, never the reverse.

Installed as ``streamal.connectors``. The CLI finds a connector by name
through an entry point: ``streamal.apps`` for one that runs the whole loop
itself (the Kafka daemon: ``[source] spec = "kafka"``), ``streamal.sources``
for one that only yields ``streamal.Record`` objects to the engine (a
callable taking the spec string ``scheme:...``).
"""
