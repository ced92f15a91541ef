"""What an admin sees of a running engine: counters (:mod:`.tally`), each source's state
(:mod:`.source_health`), the heartbeat in the state database (:mod:`.heartbeat`), and the
``[observability] listen`` endpoint: Prometheus metrics (:mod:`.collector`) and
``/healthz`` / ``/readyz`` (:mod:`.health`, :mod:`.server`).

This package imports ``prometheus_client`` only in the modules of the endpoint."""
