# Every target works from a fresh clone: `install` makes .venv on first use.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_URL ?= https://raw.githubusercontent.com/noahgift/Python-MLOps-Cookbook/main/htwtmlb.csv
DATA_SHA256 := b231c5d71bc75cd71bc70fa34d9647401a5ad7e120a18be1ad4e49236e15ea10
PORT ?= 8080
WEIGHT ?= 200
PREDICT_URL ?= http://localhost:$(PORT)/predict

.PHONY: help install data test lint format run serve retrain predict bench test-reliability

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed ## Create .venv and install the pinned requirements

htwtmlb.csv:
	$(PYTHON) scripts/fetch_data.py "$(DATA_URL)" htwtmlb.csv $(DATA_SHA256)

data: htwtmlb.csv ## Download htwtmlb.csv from DATA_URL and verify its sha256

test: install data ## Run every test
	$(BIN)/python -m pytest

lint: install ## Check style with ruff (never rewrites)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Rewrite the code in ruff's style
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

run: install ## Serve with Flask's development server on 127.0.0.1:PORT (no debugger)
	PORT=$(PORT) $(BIN)/python app.py

serve: install ## Serve with gunicorn on 0.0.0.0:PORT (default 8080)
	PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py app:app

retrain: install data ## Retrain model.joblib and model.json from htwtmlb.csv
	$(BIN)/python utilscli.py retrain

predict: install ## Ask a running service (PREDICT_URL) for WEIGHT's height
	$(BIN)/python utilscli.py predict --weight $(WEIGHT) --host $(PREDICT_URL)

bench: install data ## Measure throughput, latency, start-up and memory; print the figures
	$(BIN)/python bench/run.py

test-reliability: install data ## Run the reliability suite: fuzz, load, reload, crash, stop, faults (~3 min)
	$(BIN)/python -m pytest -m reliability -s tests/reliability
