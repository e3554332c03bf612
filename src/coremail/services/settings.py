"""Reading and changing configuration keys (`coremail config get/set`, and
later the webadmin): validated against the Settings model, written to
coremail.toml atomically with its comments kept (tomlkit). Running services
notice the file change within a second or two (config.ConfigWatcher)."""
from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import tomlkit

from ..config import CONFIG_RELATIVE, ConfigError, Settings, build_settings


def _split_key(key: str) -> tuple[str, str]:
    section, dot, name = key.partition(".")
    if not dot or not name or "." in name:
        raise ConfigError(f"{key!r}: a key is SECTION.NAME, e.g. limits.max_message_size")
    if section not in Settings.model_fields:
        raise ConfigError(f"{key!r}: unknown section {section!r}; sections are "
                          + ", ".join(Settings.model_fields))
    if name not in Settings.model_fields[section].annotation.model_fields:
        known = ", ".join(Settings.model_fields[section].annotation.model_fields)
        raise ConfigError(f"{key!r}: unknown key; keys of [{section}] are {known}")
    return section, name


def get_value(settings: Settings, key: str) -> str:
    section, name = _split_key(key)
    value = getattr(getattr(settings, section), name)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps([str(v) for v in value])
    return str(value)


def _parse_value(text: str) -> Any:
    """A TOML literal (42, true, "x", ["a"]) where it parses as one, else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_value(home: Path, key: str, text: str) -> Settings:
    """Validate and write one key; returns the new settings. Raises ConfigError
    naming the key and what is allowed; the file is untouched then."""
    section, name = _split_key(key)
    path = Path(home) / CONFIG_RELATIVE
    doc = tomlkit.parse(path.read_text())
    value = _parse_value(text)
    field = Settings.model_fields[section].annotation.model_fields[name]
    if field.annotation is str and not isinstance(value, str):
        value = text
    if section not in doc:
        doc[section] = tomlkit.table()
    doc[section][name] = value
    new_text = tomlkit.dumps(doc)
    settings = build_settings(tomllib.loads(new_text))
    tmp = path.with_suffix(".toml.tmp")
    with open(tmp, "w") as f:
        f.write(new_text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return settings
