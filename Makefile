# Two commands from nothing: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PROMPT ?= What is the capital of France? Answer in one sentence.
# zig (PyPI ziglang), the cross compiler of `make cross`, pinned: clang, musl and libc++ come with it.
ZIG_VERSION := 0.15.2
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: run test install venv llama-cpp model bench clean gn

venv: $(VENV)/.ready $(VENV)/.ziglang-$(ZIG_VERSION)
$(VENV)/.ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.21" ninja numpy gguf pytest \
		"starlette>=0.37,<2" "uvicorn>=0.29,<1" "prometheus-client>=0.20,<1" "openai>=1.30,<4" "httpx>=0.27,<1"
	touch $@

# zig (PyPI ziglang, ZIG_VERSION above) is the cross compiler of `make cross`.
$(VENV)/.ziglang-$(ZIG_VERSION): $(VENV)/.ready
	$(PY) -m pip install "ziglang==$(ZIG_VERSION)"
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

# Cross builds with zig standing in for the OpenHarmony native SDK (docs/ohos-integration.md): static
# ohai-cli and ohai-isolate and the ai_engine plugin libraries (stripped) in build/cross/<triple>/,
# from CMake build trees in build/cross/<triple>/build/ (incremental, ccache'd).
CROSS_TARGETS := ohai-cli ohai-isolate ohai_llm ohai_llm_sync ohai-greedy-logits   # the last for tests/test_cross.py
CROSS_LEVEL_aarch64-linux-musl := armv8.2-a+dotprod+fp16
CROSS_LEVEL_arm-linux-musleabi := armv7-a
.PHONY: cross cross-arm64 cross-arm
cross: cross-arm64 cross-arm
cross-arm64: llama-cpp
	@$(MAKE) --no-print-directory cross-build TRIPLE=aarch64-linux-musl
cross-arm: llama-cpp
	@$(MAKE) --no-print-directory cross-build TRIPLE=arm-linux-musleabi
.PHONY: cross-build
cross-build:
	@test -n "$(TRIPLE)" || (echo "usage: make cross-build TRIPLE=<triple of cmake/toolchains/zig-*.cmake>"; exit 2)
	@mkdir -p build/cross/$(TRIPLE)
	@echo "cross-building for $(TRIPLE) (log: build/cross/$(TRIPLE)/build.log)"
	@# CMake caches a toolchain's flags (and the flag translation's checksum) at the first configure:
	@# when one of these files changes, the build tree is configured afresh (--fresh; ccache keeps it cheap).
	@mkdir -p build/cross/$(TRIPLE)/build; stamp=build/cross/$(TRIPLE)/build/ohai-toolchain.md5; \
	sum=$$(cat cmake/toolchains/zig.cmake cmake/toolchains/zig-$(TRIPLE).cmake scripts/zig_cc.py | md5sum); \
	if [ "$$(cat $$stamp 2>/dev/null)" != "$$sum" ]; then echo "$$sum" > $$stamp.new; fi
	@# OHAI_AFFINITY_SHIM=ON: compile what an OpenHarmony musl without pthread_setaffinity_np gets.
	@($(VENV)/bin/cmake -S . -B build/cross/$(TRIPLE)/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
		$$(test -f build/cross/$(TRIPLE)/build/ohai-toolchain.md5.new && echo --fresh) \
		-DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/toolchains/zig-$(TRIPLE).cmake \
		-DOHAI_CPU_LEVEL=$(CROSS_LEVEL_$(TRIPLE)) -DOHAI_AFFINITY_SHIM=ON \
		-DOHAI_FETCH_LLAMA_CPP=OFF -DCMAKE_MAKE_PROGRAM=$(CURDIR)/$(VENV)/bin/ninja && \
	  { ! test -f build/cross/$(TRIPLE)/build/ohai-toolchain.md5.new || \
	    mv -f build/cross/$(TRIPLE)/build/ohai-toolchain.md5.new build/cross/$(TRIPLE)/build/ohai-toolchain.md5; } && \
	  $(VENV)/bin/cmake --build build/cross/$(TRIPLE)/build --target $(CROSS_TARGETS)) \
		> build/cross/$(TRIPLE)/build.log 2>&1 || (tail -n 60 build/cross/$(TRIPLE)/build.log; exit 1)
	@for f in plugin/cli/ohai-cli plugin/cli/ohai-isolate plugin/aie/libohai_llm.so plugin/aie/libohai_llm_sync.so; do \
		cp build/cross/$(TRIPLE)/build/$$f build/cross/$(TRIPLE)/.$$(basename $$f).new && \
		mv -f build/cross/$(TRIPLE)/.$$(basename $$f).new build/cross/$(TRIPLE)/$$(basename $$f) || exit 1; \
	done
	@ls -l build/cross/$(TRIPLE) | grep -v '^d\|^total'

clean:
	rm -rf build $(VENV)
