"""Reading and changing configuration keys (`coremail config get/set` and
the webadmin's settings page): validated against the Settings model, written
to coremail.toml atomically with its comments kept (tomlkit). Running
services notice the file change within a second or two (config.ConfigWatcher).
`describe` lists every key of the model with its help, for the web form."""
from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import tomlkit

from ..config import CONFIG_RELATIVE, ConfigError, Duration, Settings, Size, build_settings


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
    return set_values(home, {key: text})


def set_values(home: Path, values: dict[str, str]) -> Settings:
    """Several keys in one validated write: all of them or none."""
    path = Path(home) / CONFIG_RELATIVE
    doc = tomlkit.parse(path.read_text())
    for key, text in values.items():
        section, name = _split_key(key)
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


# ---------------------------------------------------------------- the form
# Keys that only a restart of the services applies (sockets, processes, the store).
RESTART_SECTIONS = ("listen", "workers", "storage")


@dataclass
class KeyView:
    """One key as the webadmin's settings page shows it."""

    key: str
    name: str
    kind: str            # "bool", "choice", "list" or "text"
    value: str           # as a form shows it (lists one entry per line)
    default: str
    allowed: str         # what may be entered, in words
    help: str
    choices: tuple[str, ...] = ()
    env: str = ""        # the environment variable overriding it, when one does
    restart: bool = False


@dataclass
class SectionView:
    name: str
    keys: list[KeyView]


def _template_help() -> dict[str, str]:
    """The comment beside each key (and its continuation lines) in the file
    `coremail init` writes: the one place a key's meaning is written down."""
    from .home import TEMPLATE
    out: dict[str, str] = {}
    section, last = "", ""
    for raw in TEMPLATE.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section, last = line[1:-1], ""
            continue
        body = line.lstrip("#").strip()
        m = _KEY_LINE.match(body)
        if m and section:
            last = f"{section}.{m.group(1)}"
            if m.group(2):
                out[last] = m.group(2).strip()
        elif last and line.startswith("#") and body.startswith("#"):
            out[last] = (out.get(last, "") + " " + body.lstrip("#").strip()).strip()
        else:
            last = ""
    return out


_KEY_LINE = re.compile(r"^([a-z_][a-z0-9_]*)\s*=\s*(?:\"[^\"]*\"|\[[^\]]*\]|[^#\s]+)\s*(?:#\s*(.*))?$")


def _allowed(annotation: Any, meta: list) -> tuple[str, str, tuple[str, ...]]:
    """(kind, what may be entered in words, choices) of one field."""
    lo = next((m.ge for m in meta if getattr(m, "ge", None) is not None), None)
    hi = next((m.le for m in meta if getattr(m, "le", None) is not None), None)
    if annotation is bool:
        return "bool", "true or false", ("true", "false")
    if get_origin(annotation) is Literal:
        choices = tuple(str(a) for a in get_args(annotation))
        return "choice", "one of " + ", ".join(choices), choices
    if get_origin(annotation) is list:
        inner = get_args(annotation)[0] if get_args(annotation) else str
        each = _allowed(inner, [])[1]
        return "list", f"a list, one entry per line (each {each})", ()
    if annotation is Size:
        return "text", "a size: bytes, or a number with K, M or G (e.g. 50M)", ()
    if annotation is Duration:
        return "text", "a duration: a number with s, m, h or d (e.g. 5m)", ()
    if annotation is int:
        if lo is not None and hi is not None:
            return "text", f"a whole number from {lo} to {hi}", ()
        return "text", "a whole number", ()
    if annotation is float:
        return "text", "a number", ()
    return "text", "text", ()


def describe(settings: Settings) -> list[SectionView]:
    """Every section and key of the typed configuration with its current
    value, what it accepts and its help: the settings page is built from
    this, so a section added to config.Settings shows up by itself."""
    helps = _template_help()
    defaults = Settings.model_construct()
    out = []
    for section, sfield in Settings.model_fields.items():
        model = sfield.annotation
        keys = []
        for name, f in model.model_fields.items():
            key = f"{section}.{name}"
            kind, allowed, choices = _allowed(f.annotation, f.metadata)
            default = getattr(getattr(defaults, section), name)
            env = f"COREMAIL_{section.upper()}__{name.upper()}"
            keys.append(KeyView(
                key=key, name=name, kind=kind, value=_form_text(get_value(settings, key)),
                default=_form_text(_text(default)), allowed=allowed,
                help=helps.get(key) or (f.description or ""), choices=choices,
                env=env if env in os.environ else "", restart=section in RESTART_SECTIONS))
        out.append(SectionView(section, keys))
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps([str(v) for v in value])
    return str(value)


def _form_text(text: str) -> str:
    if text.startswith("["):
        return "\n".join(json.loads(text))
    return text


def literal(key: str, form_text: str) -> str:
    """What a form field holds, as the VALUE `coremail config set` takes:
    a list field's lines become a TOML array, a text field stays text."""
    section, name = _split_key(key)
    f = Settings.model_fields[section].annotation.model_fields[name]
    if get_origin(f.annotation) is list:
        items = [x.strip() for x in re.split(r"[\n,]", form_text) if x.strip()]
        return json.dumps(items)
    return form_text.strip()


def changed(settings: Settings, form: dict[str, str]) -> dict[str, tuple[str, str]]:
    """The keys whose submitted value differs from the current one:
    key -> (old, new) in `config set` spelling."""
    out = {}
    for key, text in form.items():
        try:
            old = get_value(settings, key)
        except ConfigError:
            continue
        new = literal(key, text)
        if _form_text(new) != _form_text(old):
            out[key] = (old, new)
    return out
