"""A missing or broken model fails at start, naming the file and the setting."""

import subprocess
import sys

import gevent
import numpy as np
import pytest

from tomctl.errors import ModelError
from tomctl.speech import assets
from tomctl.speech.llama import LlamaLanguageModel
from tomctl.speech.piper import PiperTextToSpeech
from tomctl.speech.whisper import WhisperSpeechToText


@pytest.mark.parametrize("locate,setting", [
    (assets.stt_model_dir, "TOM_STT_MODEL"),
    (assets.llm_model_file, "TOM_LLM_MODEL"),
    (assets.tts_voice_file, "TOM_TTS_VOICE"),
    (assets.turn_model_file, "TOM_TURN_MODEL"),
])
def test_a_missing_model_names_the_setting_and_path(tmp_path, locate, setting):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError, match=f"{setting}.*no-such-model|no-such-model.*{setting}"):
        locate(str(missing))


def test_the_bundled_models_are_found():
    assert assets.stt_model_dir("").joinpath("model.bin").is_file()
    assert assets.llm_model_file("").suffix == ".gguf"
    assert assets.tts_voice_file("").suffix == ".onnx"
    assert assets.turn_model_file("").name == "smart-turn-v3.2-cpu.onnx"


def test_the_end_of_turn_model_hears_a_finished_question_and_a_broken_one_fails(tmp_path):
    from testkit.speech import espeak_say
    from tomctl.speech.smart_turn import SmartTurn

    model = SmartTurn(assets.turn_model_file(""), 1)
    gevent.get_hub().threadpool.apply(model.load)
    question = espeak_say("What time do you open on Saturday?", 16000)
    padded = np.concatenate([np.zeros(4800, np.float32), question, np.zeros(3200, np.float32)])
    assert gevent.get_hub().threadpool.apply(model.complete_probability, (padded,)) > 0.5
    broken = tmp_path / "turn.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match="turn.onnx.*TOM_TURN_MODEL"):
        gevent.get_hub().threadpool.apply(SmartTurn(broken, 1).load)


def test_a_broken_gguf_fails_to_load_with_a_clear_error(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    model = LlamaLanguageModel(broken, 1, 512, 16, 0.3, 1, 0)
    with pytest.raises(ModelError, match="broken.gguf.*TOM_LLM_MODEL"):
        model.load()


def test_a_broken_voice_fails_to_load_with_a_clear_error(tmp_path):
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"not an onnx model")
    voice.with_suffix(".onnx.json").write_text(assets.tts_voice_file("").with_suffix(
        ".onnx.json").read_text())
    with pytest.raises(ModelError, match="voice.onnx.*TOM_TTS_VOICE"):
        gevent.get_hub().threadpool.apply(PiperTextToSpeech(voice, False, [1]).load)


def test_a_broken_whisper_model_fails_to_load_with_a_clear_error(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"nonsense")
    stt = WhisperSpeechToText(tmp_path, "en", "cpu", 1, 5000, 0.6)
    with pytest.raises(ModelError, match="TOM_STT_MODEL"):
        gevent.get_hub().threadpool.apply(stt.load)   # as the engine loads it: off the hub


def test_serve_refuses_to_start_without_its_model(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tomctl", "serve"], capture_output=True, text=True, timeout=60,
        env={"TOM_TTS_VOICE": str(tmp_path / "missing.onnx"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "TOM_TTS_VOICE" in result.stderr and "missing.onnx" in result.stderr
