# Foramen: one-command set-up, build, run and test on a fresh Debian machine.
#   make run    install what is missing, build, annotate the bundled demo clip into out/
#   make test   install what is missing, run the Rust and Python test suites
#   make bench  the benchmarks

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

VENV        := .venv
PY          := $(VENV)/bin/python
REQS        := models/training/requirements.txt
# xvfb + xauth + mesa-vulkan-drivers: the window (wgpu on Mesa's lavapipe) runs headless
# in tests and `make run` when there is no display. qemu-user: the INT8 tests run the
# binary on an emulated x86 CPU without VNNI (tests/python/test_int8_without_vnni.py).
APT_PKGS    := build-essential pkg-config clang libclang-dev libopencv-dev ffmpeg python3-venv fonts-dejavu-core \
               xvfb xauth mesa-vulkan-drivers libvulkan1 libxkbcommon-x11-0 qemu-user
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FORAMEN     := target/release/foramen
DEMO        := assets/demo.mp4
MODEL       := models/lumbar-synth.onnx
STAMPS      := .make

.PHONY: setup models apt venv venv-labelstudio check-rust build run test test-build-rust test-rust test-python test-recipe test-python-bin test-labelstudio bench bench-window soak fuzz cuda-bundle vulkan-bp demo-clip synth-data train-lumbar train-vocalfolds-lite0 adapt-vocalfolds encoder-table encoder-table-light quantize tube-figure contact-sheet lint clean

setup: apt venv check-rust models

# System packages: only the missing ones are installed.
apt: $(STAMPS)/apt
$(STAMPS)/apt: Makefile
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p $(STAMPS) && touch $@

# Python environment for the training recipe; it also carries ONNX Runtime's shared
# library, which the binary finds in .venv by itself (or through ORT_DYLIB_PATH).
venv: $(VENV)/.installed
$(VENV)/.installed: $(REQS) | $(STAMPS)/apt
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r $(REQS)
	@# Label Studio's own RLE codec, to test ours against (its brush module needs only
	@# numpy and Pillow; the package's other dependencies are not needed).
	$(PY) -m pip install -q --no-deps label-studio-converter==0.0.59
	@touch $@

# The FP32 models are exported from their bundled checkpoints (the same bytes every time,
# with the venv's pinned PyTorch) instead of living in git: a checkpoint holds the same
# weights (packed in half precision, foramen_train.pack: 7.1 MB against 13.5 MB), it is
# the starting point of a fine-tune, and the working tree must stay small enough to
# travel to a lent GPU with a part of the CUDA bundle (docs/GPU.md). The INT8 models stay
# in git.
VF_MODEL    := models/vocalfolds.onnx
models: $(MODEL) $(VF_MODEL)
models/%.onnx: models/%-lite0.pt $(VENV)/.installed
	cd models/training && ../../$(PY) -m foramen_train.export --checkpoint ../$*-lite0.pt --out ../$*.onnx

# Label Studio itself, in its own environment (about 1 GB, about 2 min once), for the
# round trip through a real server (tests/python/test_labelstudio_server.py).
LS_VENV     := .venv-labelstudio
LS_VERSION  := 1.23.2
LS_EXE      := $(LS_VENV)/bin/label-studio
venv-labelstudio: $(LS_VENV)/.installed-$(LS_VERSION)
$(LS_VENV)/.installed-$(LS_VERSION): | $(STAMPS)/apt
	@[ -x $(LS_VENV)/bin/python ] || python3 -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q --upgrade pip
	$(LS_VENV)/bin/python -m pip install -q label-studio==$(LS_VERSION)
	@rm -f $(LS_VENV)/.installed*
	@touch $@

# A CPU Vulkan driver that Dawn (ONNX Runtime's WebGPU provider) accepts: Mesa 25's
# lavapipe from bookworm-backports, unpacked into .vulkan-bp/ with the newer libdrm it
# needs; nothing is installed, so the system's Mesa 22 lavapipe (which Dawn refuses and the
# window's tests use) stays as it is. Only the WebGPU-against-CPU test points Vulkan at it.
VK_BP       := .vulkan-bp
VK_BP_PKGS  := mesa-vulkan-drivers=25.0.7-2~bpo12+1 libdrm2=2.4.123-1~bpo12+1 libdrm-amdgpu1=2.4.123-1~bpo12+1
vulkan-bp: $(VK_BP)/lvp.json
$(VK_BP)/lvp.json: | $(STAMPS)/apt
	@rm -rf $(VK_BP) && mkdir -p $(VK_BP)/lists/partial $(VK_BP)/debs $(VK_BP)/root
	echo "deb http://deb.debian.org/debian bookworm-backports main" > $(VK_BP)/sources.list
	o="-o Dir::Etc::SourceList=$$PWD/$(VK_BP)/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$$PWD/$(VK_BP)/lists -o Dir::Cache=$$PWD/$(VK_BP)/cache -o APT::Sandbox::User=root"; \
	  apt-get -qq $$o update && cd $(VK_BP)/debs && apt-get -qq $$o download $(VK_BP_PKGS)
	for f in $(VK_BP)/debs/*.deb; do dpkg -x $$f $(VK_BP)/root; done
	sed "s#\"libvulkan_lvp.so\"#\"$$PWD/$(VK_BP)/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so\"#" \
	  $(VK_BP)/root/usr/share/vulkan/icd.d/lvp_icd.json > $@.tmp && mv $@.tmp $@

check-rust:
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust >= 1.92 with rustup (https://rustup.rs) and re-run"; exit 1; }

build: setup
	cargo build --release --workspace

run: build
	@mkdir -p out
	./$(FORAMEN) replay $(DEMO) --out out/demo.annotated.mp4 --telemetry out/demo.telemetry.csv
	@# The operating-room window on the same clip: on the screen when there is one,
	@# else under Xvfb with a screenshot of the window in out/view.png.
	@if [ -n "$${DISPLAY:-}" ]; then ./$(FORAMEN) view $(DEMO); \
	else xvfb-run -a -s "-screen 0 1280x720x24" ./$(FORAMEN) view $(DEMO) \
	  --snapshot-after-frames 60 out/view.png --exit-after-frames 60 --telemetry out/view.telemetry.csv \
	  && echo "window screenshot: out/view.png, display latency: out/view.telemetry.csv"; fi

# On a clean clone (CI) the Rust build is most of the time (11.3 min of a clean
# `cargo test --no-run` on 2 cores, 2026-12-04, with Cargo.toml's dependency opt-levels;
# 15.7 min before them): it runs beside the Python, Label Studio and Vulkan installs,
# which wait on the network and the disk, then the suites (about 7.5 min). Cargo gets its
# own job count (the MAKEFLAGS jobserver is not passed on). `make test` on a clean clone,
# Debian packages already installed: 19 min 2 s (2026-12-04).
test: apt
	$(MAKE) --no-print-directory --output-sync=line -j4 setup vulkan-bp venv-labelstudio test-build-rust
	$(MAKE) --no-print-directory test-rust test-python

test-build-rust: check-rust | $(STAMPS)/apt
	env -u MAKEFLAGS -u MFLAGS cargo test --workspace --no-run

test-rust: setup
	cargo test --workspace

# The recipe's suite beside the Python checks of the built binary (SciPy, Label Studio's
# codec, a real Label Studio server started on loopback). Each keeps about one core busy
# (measured 2026-12-04: recipe 280 s wall for 319 CPU-s, binary checks 121 s for 132), so
# on 2 cores they run side by side; each one's output is printed when it ends.
test-python: venv venv-labelstudio
	$(MAKE) --no-print-directory --output-sync=target -j2 test-recipe test-python-bin

test-recipe: venv
	cd models/training && ../../$(PY) -m pytest -q

test-python-bin: venv venv-labelstudio
	FORAMEN_LABEL_STUDIO=$(LS_EXE) $(PY) -m pytest -q tests/python

# The Label Studio server round trip alone, with its log line.
test-labelstudio: venv venv-labelstudio
	cargo build --release -p foramen
	FORAMEN_BIN=$(FORAMEN) FORAMEN_LABEL_STUDIO=$(LS_EXE) $(PY) -m pytest -q -s tests/python/test_labelstudio_server.py

# The offline pipeline against the straightforward Python loop (same clip, model and
# cores), the criterion micro-benchmarks, then the table in docs/PERFORMANCE.md.
# BENCH_INPUT / BENCH_MODEL pick another clip or model.
BENCH_INPUT ?= $(DEMO)
BENCH_MODEL ?= $(MODEL)
# The comparison writes MPEG-4 Part 2 on both sides (the Python wheels' OpenCV cannot
# write H.264); Foramen's own H.264 output and the paced live path are measured too.
bench: build
	@mkdir -p out/bench
	./$(FORAMEN) bench $(BENCH_INPUT) --model $(BENCH_MODEL) --codec mpeg4 \
	  --out out/bench/foramen.annotated.mp4 --json out/bench/foramen.json
	$(PY) benches/python_baseline.py $(BENCH_INPUT) --model $(BENCH_MODEL) --out out/bench/python.annotated.mp4 \
	  --json out/bench/python.json
	./$(FORAMEN) bench $(BENCH_INPUT) --model $(BENCH_MODEL) --codec h264 \
	  --out out/bench/foramen-h264.annotated.mp4 --json out/bench/foramen-h264.json
	./$(FORAMEN) bench $(BENCH_INPUT) --model $(BENCH_MODEL) --realtime --json out/bench/realtime.json
	cargo bench -p foramen --bench stages -- --warm-up-time 1 --measurement-time 3
	$(PY) benches/report.py --foramen out/bench/foramen.json --python out/bench/python.json \
	  --foramen-h264 out/bench/foramen-h264.json --realtime out/bench/realtime.json

# Display latency of the real window: the demo replayed as a 1920x1080, 60 fps live
# source; capture-to-present (video) and source-capture-to-mask-present (annotation)
# per presented frame in out/window-latency.csv, percentiles on stdout. Under Xvfb the
# GPU is Mesa's lavapipe on the same CPU cores as decoding and inference.
bench-window: build
	@mkdir -p out
	xvfb-run -a -s "-screen 0 1920x1080x24" ./$(FORAMEN) view $(DEMO) --fps 60 --window-size 1280x720 \
	  --exit-after-frames 1000000 --telemetry out/window-latency.csv

# The hour-long soak of the live path (capture, inference, recording): RSS and open
# files sampled every second must stay flat. CI runs the same test for a minute.
soak: setup
	FORAMEN_SOAK_SECONDS=3600 cargo test --release -p foramen --test window minute -- --nocapture

# Fuzz the parsers that take outside input, each for FUZZ_SECONDS (cargo-fuzz with
# libFuzzer; RUSTC_BOOTSTRAP lets the stable toolchain build the sanitizer flags).
# Crashes land in fuzz/artifacts/<target>/ and become regression tests.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := rle labelstudio_json config model_metadata dataset_list masks_bin
fuzz: setup
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run -O $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

# What a GPU machine needs to time foramen-probe on CUDA (docs/GPU.md): onnxruntime-gpu
# 1.31.1's libraries with only the sm_90 (H100, H200) kernels, the stripped probe and
# run-probe.sh, xz-packed and split into parts under 40 MB in .cuda-bundle/parts with a
# manifest of SHA-256s. Downloads about 256 MB once; xz -9e takes minutes on 2 cores.
cuda-bundle: check-rust
	cargo build --release -p foramen-segment --bin foramen-probe
	python3 tools/cuda_bundle.py build

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	@# The Python: the training recipe, the checks of the binary, the benchmark scripts
	@# and the layout check (settings in ruff.toml).
	$(PY) -m ruff check models/training tests/python benches tools
	$(PY) -m ruff format --check models/training tests/python benches tools
	@# Production Rust files under 600 lines, functions under 100, the binary crate's
	@# src/ under 2,500 lines (docs/ARCHITECTURE.md).
	$(PY) tools/check_layout.py

# --- Regenerating the bundled assets (checked in; not part of run/test) ----------

# The demo clip: 8 s of synthetic transforaminal endoscopy at 1920x1080, 30 fps.
demo-clip: build
	./$(FORAMEN) synth --video $(DEMO) --frames 240 --fps 30 --size 1920x1080 --seed 7

# The training set of the bundled model, then the model itself (ImageNet EfficientNet-Lite0,
# a 25-minute budget on 2 idle cores): the last epoch's checkpoint packed into models/,
# exported and quantized. configs/lumbar-synth.toml is the scratch recipe bundled until
# 2026-12-03 (models/lumbar-synth.md).
synth-data: build
	./$(FORAMEN) synth --out out/synth-train --count 1200 --seed 1000 --size 640x360

train-lumbar: venv synth-data
	cd models/training && ../../$(PY) -m foramen_train.train --config configs/lumbar-synth-lite0.toml \
	  --out runs/lumbar-lite0 --no-progress
	cd models/training && ../../$(PY) -m foramen_train.pack --from runs/lumbar-lite0/last.pt \
	  --out ../lumbar-synth-lite0.pt
	cp models/training/runs/lumbar-lite0/metrics.csv models/lumbar-synth.metrics.csv
	$(MAKE) quantize

# The bundled vocalfolds model (ImageNet EfficientNet-Lite0, flips only, void ignored; 18
# epochs, about 11 min on 2 cores with nothing else running): the last epoch's weights are
# the model (no pick on the validation set), exported and quantized into models/, and the
# checkpoint is the bundled starting point of `foramen_train.finetune`; adapt-vocalfolds
# measures adaptation to the unseen patients (rehearsing the training frames: README,
# "Adaptation to a new patient"; 34 min on 2 idle cores, measured 2026-12-03).
train-vocalfolds-lite0: venv
	cd models/training && ../../$(PY) -m foramen_train.train --config configs/vocalfolds-lite0.toml \
	  --out runs/vocalfolds-lite0 --no-progress
	cd models/training && ../../$(PY) -m foramen_train.pack --from runs/vocalfolds-lite0/last.pt \
	  --out ../vocalfolds-lite0.pt
	cp models/training/runs/vocalfolds-lite0/metrics.csv models/vocalfolds.metrics.csv
	$(MAKE) quantize

adapt-vocalfolds: venv
	cd models/training && ../../$(PY) -m foramen_train.adapt --from ../vocalfolds-lite0.pt \
	  --data ../../../shared/data/vocalfolds --list val.txt --seeds 0 1 2 --steps 40 --steps-per-frame 4 --rehearse \
	  --reference --out runs/adapt-vocalfolds

# Scratch vs EfficientNet-Lite0/1/2 at equal epochs (10 at 256x256), seed 0 for all, then
# scratch, Lite0 and Lite2 on seeds 1 and 2 (50 min on 2 idle cores, measured 2026-12-02).
encoder-table: venv
	cd models/training && T="../../$(PY) -m foramen_train.encoder_table --config configs/encoder-table.toml \
	  --out runs/encoder-table --epochs 10 --size 256" && $$T --seeds 0 && \
	  $$T --encoders stdc-scratch efficientnet-lite0 efficientnet-lite2 --seeds 0 1 2

# The same table with the bundled recipe (configs/vocalfolds-lite0.toml: flips, plain CE,
# EMA): 18 epochs at 320x320, scratch, Lite0 and Lite2 on seeds 0-2, Lite1 on seed 0
# (about 100 min on 2 idle cores, measured 2026-12-03), with the PP-LiteSeg decoder the
# table was measured with (the recipe's own decoder is the FPN since then).
encoder-table-light: venv
	cd models/training && T="../../$(PY) -m foramen_train.encoder_table --config configs/vocalfolds-lite0.toml \
	  --out runs/encoder-table-light --epochs 18 --size 320 --set model.decoder=\"ppliteseg\" \
	  --set model.decoder_channels=[32,64,96] --set model.sppm_channels=96" && \
	  $$T --encoders stdc-scratch efficientnet-lite0 efficientnet-lite2 --seeds 0 1 2 && \
	  $$T --encoders efficientnet-lite1 --seeds 0

# The INT8 (QDQ) variants of the bundled models, calibrated on training frames
# (deterministic: rerunning rewrites the same bytes), 7-bit weights (safe on CPUs without
# VNNI) except in depthwise convolutions, which keep 8 (ONNX Runtime's depthwise kernel
# adds in 32 bits on every CPU; --depthwise-bits). The lumbar one is the default model,
# all in INT8: 99.6 % of pixels agree with FP32 (-0.1 points; 99.4 % and -0.4 with 7-bit
# depthwise weights). In the vocalfolds model the encoder's stem and blocks 0-1 (stride
# <= 4) stay in float: all in INT8 its rounding moved val mIoU by 1.2 points (98.1 %
# agreeing); so, 99.4 % agree, +0.1 points, 0.65 ms faster than with blocks 2-3 in float
# too. The Resize that upsamples the logits stays in float in both (0.3 ms less; see
# models/training/README.md "INT8 models", measured 2026-12-04).
# Each must then agree with its FP32 model on held-out frames (fidelity gate).
VOCALFOLDS_FLOAT_LAYERS = --keep-float encoder.conv_stem --keep-float encoder.blocks.0. --keep-float encoder.blocks.1.
quantize: venv models
	cd models/training && ../../$(PY) -m foramen_train.quantize --model ../lumbar-synth.onnx \
	  --config configs/lumbar-synth-lite0.toml --out ../lumbar-synth.int8.onnx --reduce-range && \
	  ../../$(PY) -m foramen_train.fidelity --reference ../lumbar-synth.onnx --model ../lumbar-synth.int8.onnx \
	  --data-root ../../out/synth-train --list test.txt --no-progress --min-agreement 0.99
	@if [ -d ../shared/data/vocalfolds ]; then cd models/training && ../../$(PY) -m foramen_train.quantize \
	  --model ../vocalfolds.onnx --config configs/vocalfolds-lite0.toml --out ../vocalfolds.int8.onnx \
	  --reduce-range $(VOCALFOLDS_FLOAT_LAYERS) && ../../$(PY) -m foramen_train.fidelity --reference ../vocalfolds.onnx \
	  --model ../vocalfolds.int8.onnx --data-root ../../../shared/data/vocalfolds --list val.txt --no-progress \
	  --min-agreement 0.99; fi

$(STAMPS):
	@mkdir -p $@

clean:
	cargo clean
	rm -rf out $(STAMPS)

# The vocalfolds model card's figure of where its gap is: two val frames of patient1/seq3
# (the dark area past a white tube), one of patient2/seq6 (the trachea past a dark tube) and
# a training frame of patient2/seq8, each with its truth and the model's mask.
tube-figure: venv models
	cd models/training && ../../$(PY) -m foramen_train.panels --data ../../../shared/data/vocalfolds \
	  --list val.txt --list train.txt --frame img/patient1/seq3/0216.png --frame img/patient1/seq3/0212.png \
	  --frame img/patient2/seq6/0175_l.png --frame img/patient2/seq8/0864.png --model ../vocalfolds.onnx \
	  --out figures/tube-view.jpg

# The contact sheet of generated scenes in docs/ (pictures above, masks below).
contact-sheet: venv
	cargo run --release -p foramen-data --example synth_preview -- out/synthetic-scenes.png 1
	$(PY) -c "from PIL import Image; Image.open('out/synthetic-scenes.png').convert('RGB').save('docs/synthetic-scenes.jpg', quality=85)"
