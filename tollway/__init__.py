"""tollway core: what the router, ingest, analytics and dashboards share.

Settings, the `tollway.yaml` model, the CallEvent contract, the price catalogue,
topic names, and the embedded-service supervisor live here; the parts depend on
this package and never on each other.
"""

__version__ = "0.1.0"
