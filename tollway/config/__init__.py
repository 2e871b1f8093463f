"""`tollway.yaml`: the schema (`schema.py`), loading with precise errors (`loader.py`), and the
built-in demo config used when no file is given (`demo.yaml`)."""

from tollway.config.loader import ConfigError, load_config
from tollway.config.schema import TollwayConfig

__all__ = ["ConfigError", "TollwayConfig", "load_config"]
