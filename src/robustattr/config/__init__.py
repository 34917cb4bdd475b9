"""Run configuration: one flat JSON schema with per-dataset defaults, validated up front.

A config is a JSON object with the original code's keys (spec §6), so every original
``config.json`` loads unchanged once ``dataset`` is known. The ``Config`` dataclass is the schema:
each attribute declares its type check, default (a value, or a function of the other keys), range
check and doc, and that one table drives parsing, defaults, validation, ``to_dict`` and
``describe_keys``. Layers apply in order: ``base`` < the file < ``--set`` overrides.

    >>> cfg = load_config("configs/mnist/ig-norm.json", ["epsilon=0.2"])
    >>> cfg.epsilon, cfg.lambda_, cfg.to_dict()["lambda"]
    (0.2, 1.0, 1.0)
"""

from robustattr.config.loading import (
    ALIASES, build, describe_keys, load_config, load_run_or_config, read_json_file,
)
from robustattr.config.schema import Config
from robustattr.devices import resolve_device

__all__ = ["ALIASES", "Config", "describe_keys", "load_config", "load_run_or_config", "read_json_file",
           "resolve_device", "build"]
