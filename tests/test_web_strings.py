"""The web extension's strings are ready for the editor's languages: every key the scripts ask for is in
English, every language has the same keys with the same placeholders, and every setting the scripts register
has its name in each language's settings.json (the editor's key: the setting id with dots as underscores)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
SCRIPTS = sorted((ROOT / "web").glob("*.js"))


def _flatten(table: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _strings(lang: str) -> dict[str, str]:
    return _flatten(json.loads((LOCALES / lang / "main.json").read_text())["animateflow"])


def test_every_key_the_scripts_use_is_in_english():
    used = {key for path in SCRIPTS for key in re.findall(r"\bt\(\s*\"([\w.]+)\"", path.read_text())}
    assert used, "no script asks for a string"
    assert used <= set(_strings("en")), sorted(used - set(_strings("en")))


def test_every_language_has_the_same_keys_and_placeholders():
    english = _strings("en")
    for folder in sorted(LOCALES.iterdir()):
        strings = _strings(folder.name)
        assert set(strings) == set(english), folder.name
        for key, text in strings.items():
            assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", english[key])), (folder.name, key)


def test_every_registered_setting_is_named_in_every_language():
    settings = {setting for path in SCRIPTS
                for setting in re.findall(r"const SETTING = \"(AnimateFlow\.[\w.]+)\"", path.read_text())}
    assert settings
    for folder in sorted(LOCALES.iterdir()):
        named = json.loads((folder / "settings.json").read_text())
        for setting in settings:
            assert named.get(setting.replace(".", "_"), {}).get("name"), (folder.name, setting)
