"""Pieces every opslog service shares: record schema, config, logging, errors."""
