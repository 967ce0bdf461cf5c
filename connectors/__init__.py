"""Connectors to external systems (Kafka, HTTP); each imports streamal, never the reverse.

A connector makes its sources known to the CLI through the ``streamal.sources``
entry point: a callable taking the spec string (``kafka:...``) and returning
an iterable of ``streamal.Record``.
"""
