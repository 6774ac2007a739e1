from pathlib import Path

import pytest

from tomctl import config
from tomctl.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_env_sample_documents_every_setting_with_its_default():
    assert (ROOT / "env.sample").read_text() == config.env_sample(), \
        "env.sample is out of date: regenerate it from tomctl.config.env_sample()"


def test_every_setting_is_a_tom_variable_declared_once():
    names = [field.metadata["env"] for _, field in config.declarations()]
    assert all(name.startswith("TOM_") for name in names)
    assert len(names) == len(set(names))


def test_defaults_load_and_values_are_parsed():
    settings = config.load({"TOM_TURN_MAX_SILENCE_MS": "1200", "TOM_LOG_PERSONAL_DATA": "yes",
                            "TOM_DEVICE": "CPU"})
    assert settings.turns.max_silence_ms == 1200
    assert settings.log.personal_data is True
    assert settings.speech.device is config.Device.CPU
    assert config.load({}).turns.max_silence_ms == 1500


@pytest.mark.parametrize("name,value", [
    ("TOM_TURN_MAX_SILENCE_MS", "soon"),
    ("TOM_TURN_ASK_AFTER_MS", "5"),           # below one VAD chunk
    ("TOM_TURN_COMPLETE_THRESHOLD", "2"),
    ("TOM_VAD_THRESHOLD", "1.5"),
    ("TOM_LOG_PERSONAL_DATA", "maybe"),
    ("TOM_DEVICE", "tpu"),
    ("TOM_LANGUAGE", "fr"),
    ("TOM_LLM_INSTANCES", "-1"),
])
def test_an_invalid_value_fails_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        config.load({name: value})


def test_settings_are_frozen():
    settings = config.load({})
    with pytest.raises(AttributeError):
        settings.turns.max_silence_ms = 1  # type: ignore[misc]


@pytest.mark.parametrize("environ, expected", [
    ({"TOM_CPU_THREADS": "2"}, 2),          # a call per core TOM may use
    ({"TOM_CPU_THREADS": "8"}, 8),
    ({"TOM_CPU_THREADS": "8", "TOM_MAX_CALLS": "3"}, 3),   # an operator's choice wins
])
def test_the_call_capacity_follows_the_cores_unless_set(environ, expected):
    assert config.load(environ).telephony.max_calls == expected
