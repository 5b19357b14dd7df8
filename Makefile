# dedup: set-up, run, test. `make run` and `make test` each install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := datasets/demo
OUTPUT := dedup-output
BENCH_DIR ?= ../shared/bench/wallpapers

MODEL_VENV ?= .venv-model

.PHONY: model model-build all setup-env run test test-fast lint package clean check export-env bench bench-camera bench-memory bench-100k bench-fidelity bench-scale bench-video bench-views bench-warm-folder calibrate

all: check package

# The virtual environment is rebuilt whenever the pins or the metadata change.
$(STAMP): requirements.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup-env: $(STAMP)

run: setup-env
	$(BIN)/dedup delete --images-path $(DEMO) --output-path $(OUTPUT) --safe-deletion y

test: setup-env
	$(BIN)/python -m pytest -q

test-fast: setup-env
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup-env
	$(BIN)/ruff check dedup_cli tests benchmarks datasets

check: lint test

package: setup-env
	$(BIN)/python -m build --no-isolation --outdir dist .

bench: setup-env
	$(BIN)/python benchmarks/bench_hashing.py $(BENCH_DIR)

export-env: setup-env
	$(BIN)/python -m pip freeze --exclude-editable > requirements-freeze.txt
	@echo "wrote requirements-freeze.txt (compare with requirements.txt before updating the pins)"

# The CNN model of --method cnn, built once into $$XDG_CACHE_HOME/dedup/models (or
# ~/.cache/dedup/models), where later runs (and CI on the same machine) find it and skip
# the build. torch lives in its own venv so the dev venv stays light.
model: setup-env
	@if $(BIN)/dedup model check; then echo "CNN model already built"; else $(MAKE) model-build; fi

model-build:
	$(PYTHON) -m venv $(MODEL_VENV)
	$(MODEL_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-model.txt
	$(MODEL_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(MODEL_VENV)/bin/dedup model build

clean:
	rm -rf $(VENV) $(MODEL_VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis $(OUTPUT) requirements-freeze.txt
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

bench-camera: setup-env
	$(BIN)/python benchmarks/bench_hashing.py $(BENCH_DIR) --camera-jpegs 200

bench-memory: setup-env
	$(BIN)/python benchmarks/bench_memory.py --counts 1000 10000

# 100,000 small JPEGs (made once into bench-output/pictures, 752 MB): a cold dry
# run, then the median of 3 warm ones.
bench-100k: setup-env
	$(BIN)/python benchmarks/bench_memory.py --counts 100000 --folder bench-output/pictures --warm 3

bench-fidelity: setup-env
	$(BIN)/python benchmarks/hash_fidelity.py

bench-scale: setup-env
	$(BIN)/python benchmarks/bench_scale.py

# What --isometric and --views cost against the default run: FOLDER (default: the folder
# bench-warm-folder makes), ARGS for more (--repeat 3 --baseline CHECKOUT).
bench-views: setup-env
	$(BIN)/python benchmarks/bench_views.py $(FOLDER) $(ARGS)

# The 2,521-file folder of the warm-run and --views figures (WARM, default
# bench-output/warm2521): the generated, harder and variants sets of make_transforms.py
# and the first 110 files of make_emoji.py, each made when missing (needs ../shared/bench
# and fonts-noto-color-emoji), copied into one folder without their truth files.
WARM ?= bench-output/warm2521
bench-warm-folder: setup-env
	test -d bench-output/generated || $(BIN)/python benchmarks/make_transforms.py bench-output/generated --from-bench
	test -d bench-output/harder || $(BIN)/python benchmarks/make_transforms.py bench-output/harder --from-bench \
		--kinds crop10 crop15 letterbox watermark watermark_big logo_small logo_large
	test -d bench-output/variants || $(BIN)/python benchmarks/make_transforms.py bench-output/variants --from-bench \
		--kinds brightness contrast colour_balance other_hue other_shade
	test -d bench-output/emoji || $(BIN)/python benchmarks/make_emoji.py bench-output/emoji
	rm -rf $(WARM)
	for set in generated harder variants emoji; do mkdir -p $(WARM)/$$set; done
	for set in generated harder variants; do cp bench-output/$$set/* $(WARM)/$$set/; rm $(WARM)/$$set/truth.csv; done
	ls bench-output/emoji | grep -v '^truth.csv$$' | sort | head -110 | sed 's|^|bench-output/emoji/|' \
		| xargs cp -t $(WARM)/emoji

bench-video: setup-env
	$(BIN)/python benchmarks/bench_video.py --sweep 12 14 16 18 20 --hd 30

calibrate: setup-env
	$(BIN)/python benchmarks/calibrate.py
