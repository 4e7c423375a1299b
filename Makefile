# Two commands from nothing: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PROMPT ?= What is the capital of France? Answer in one sentence.
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: run test install venv llama-cpp model bench clean gn

venv: $(VENV)/.ready
$(VENV)/.ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.21" ninja numpy gguf pytest \
		"starlette>=0.37,<2" "uvicorn>=0.29,<1" "prometheus-client>=0.20,<1" "openai>=1.30,<4" "httpx>=0.27,<1"
	touch $@

llama-cpp: venv
	$(PY) scripts/fetch_llama_cpp.py

# Builds the C++ engine, the extension and ohai-cli (plus the C++ tests and llama.cpp's
# reference tools) incrementally in build/<wheel tag>, and installs them into the venv.
install: llama-cpp
	@mkdir -p build
	@echo "building ohai (log: build/install.log)"
	@OHAI_BUILD_TESTS=ON $(PY) -m pip install --no-build-isolation --no-deps -v . > build/install.log 2>&1 \
		|| (tail -n 60 build/install.log; exit 1)
	@# The same extension (and its helper process) in the source tree too, so `python -m ohai` works
	@# from the checkout. Copied aside, then renamed: a process still running the old files keeps them.
	@site=$$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['platlib'])")/ohai; \
	for f in $$site/_core*.so $$site/_aie_host*.so $$site/ohai-isolate; do \
		cp "$$f" "ohai/.$$(basename $$f).new" && mv -f "ohai/.$$(basename $$f).new" "ohai/$$(basename $$f)" || exit 1; \
	done
	@# The ai_engine plugin libraries, for ohai.aie.plugin_library() in the checkout.
	@site=$$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['platlib'])")/ohai; mkdir -p ohai/plugins; \
	for f in $$site/plugins/*.so; do \
		cp "$$f" "ohai/plugins/.$$(basename $$f).new" && mv -f "ohai/plugins/.$$(basename $$f).new" "ohai/plugins/$$(basename $$f)" || exit 1; \
	done

model: install
	$(PY) -c "import ohai; print(ohai.default_model_path())"

run: model
	$(VENV)/bin/ohai run --chat --temp 0 -n 64 "$(PROMPT)"

test: model
	$(PY) -m pytest -q tests
	cd $$(ls -d build/cp3*/ | head -n 1) && \
		OHAI_TEST_MODEL=$$($(CURDIR)/$(PY) -c "import ohai; print(ohai.default_model_path())") ctest --output-on-failure

# The GN build (what OpenHarmony's `hb build` runs) with real gn + ninja against tests/gn's stand-in
# for //build; output in build/gn/root/out.
gn: llama-cpp
	$(PY) tests/gn/run_gn.py --args 'ohai_cpu_march="native"'

bench: model
	$(PY) benchmarks/bench_vs_llama_cpp.py

clean:
	rm -rf build $(VENV)
