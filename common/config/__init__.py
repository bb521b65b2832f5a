"""Config loading: one YAML file -> typed, validated, frozen dataclasses.

Validation is offline and exhaustive: every problem is collected with its key
path (`shipper.inputs[1].format: ...`) and raised at once as ConfigError.
Environment: `${VAR}` / `${VAR:-default}` inside string values, and
OPSLOG_AMQP_URL / OPSLOG_MONGO_URI replace amqp.url / mongo.uri.
"""

from common.config.alerts import AlertRule, AlertsConfig, NotifierConfig, SmtpConfig, rule_problems
from common.config.loading import load_config, parse_config
from common.config.schema import (
    AUTH_MODES,
    CONTAINER_FORMATS,
    FORMATS,
    INPUT_TYPES,
    MIN_API_TOKEN_CHARS,
    MIN_SECRET_KEY_BYTES,
    AmqpConfig,
    Config,
    ConsumerConfig,
    InputConfig,
    JournaldConfig,
    MongoConfig,
    MultilineConfig,
    ShipperConfig,
    WebConfig,
)
from common.config.values import is_loopback
from common.errors import ConfigError  # what load_config and parse_config raise

__all__ = [
    "AUTH_MODES", "CONTAINER_FORMATS", "FORMATS", "INPUT_TYPES", "MIN_API_TOKEN_CHARS", "MIN_SECRET_KEY_BYTES",
    "AlertRule", "AlertsConfig", "NotifierConfig", "SmtpConfig", "rule_problems",
    "AmqpConfig", "Config", "ConfigError", "ConsumerConfig", "InputConfig", "JournaldConfig", "MongoConfig",
    "MultilineConfig", "ShipperConfig", "WebConfig", "is_loopback", "load_config", "parse_config",
]
