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

.PHONY: help install data test lint format run serve serve-gunicorn retrain ct print-data-url predict bench bench-tools test-reliability

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-serve.txt requirements-tools.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@# Bytecode compiled once: with PYTHONDONTWRITEBYTECODE set, every start would compile it.
	$(BIN)/python -m compileall -q cookbook app.py cli.py utilscli.py mlib.py
	touch $@

install: $(VENV)/.installed ## Create .venv and install the pinned requirements

htwtmlb.csv:
	$(PYTHON) scripts/fetch_data.py "$(DATA_URL)" htwtmlb.csv $(DATA_SHA256)

data: htwtmlb.csv ## Download htwtmlb.csv from DATA_URL and verify its sha256

test: install data ## Run every test
	$(BIN)/python -m pytest

lint: install ## Check style with ruff and the package's import layers (never rewrites)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory lint-delivery

format: install ## Rewrite the code in ruff's style
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

run: install ## Serve with Flask's development server on 127.0.0.1:PORT (no debugger)
	PORT=$(PORT) $(BIN)/python app.py

serve: install ## Serve with the production server (granian) on 0.0.0.0:PORT (default 8080)
	PORT=$(PORT) $(BIN)/python -m cookbook.web.server

serve-gunicorn: install ## Serve with gunicorn's sync workers: only behind a buffering proxy
	PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py app:app

retrain: install data ## Retrain model.joblib and model.json from htwtmlb.csv
	$(BIN)/python utilscli.py retrain

# DATA_URL is the new data here; htwtmlb.csv (make data) stays the golden set's pinned source.
ct: install ## Continuous training: fetch DATA_URL, check drift, retrain through the gate (FORCE=1 forces)
	$(BIN)/python utilscli.py ct --data-url "$(DATA_URL)" $(if $(FORCE),--force)

print-data-url: ## Print DATA_URL (the retrain workflow's default data)
	@echo "$(DATA_URL)"

predict: install ## Ask a running service (PREDICT_URL) for WEIGHT's height
	$(BIN)/python utilscli.py predict --weight $(WEIGHT) --host $(PREDICT_URL)

# wrk loads the servers and valgrind counts instructions: Debian packages, installed once.
bench-tools:
	@command -v wrk >/dev/null && command -v valgrind >/dev/null || { \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); $$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk valgrind; }

bench: install data bench-tools ## Measure throughput, latency, start-up and memory; print the figures (FULL=1: 100M-row Dask run)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/capture_instructions.py
	$(BIN)/python bench/batch_csv.py
	$(BIN)/python bench/models.py
	$(BIN)/python bench/hot_path.py
	$(BIN)/python bench/explain_cost.py
	$(BIN)/python bench/dask_score.py $(if $(FULL),--full)

# ------------------------------------------------------------ container and delivery
IMAGE ?= mlb-height:latest
# Empty: the Dockerfile's own default (python:3.12-slim). CI passes a local image.
BASE_IMAGE ?=
REGISTRY ?=

.PHONY: lint-delivery docker-build docker-run docker-smoke deploy

lint-delivery: install ## Lint the Dockerfile, the workflows, the shell scripts and the CloudFormation templates
	$(BIN)/hadolint Dockerfile
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/shellcheck scripts/*.sh .ci/run
	$(BIN)/cfn-lint deploy/lambda/template.yaml deploy/fargate/template.yaml deploy/sagemaker/template.yaml

docker-build: ## Build the service image as IMAGE (BASE_IMAGE= overrides the base)
	docker build $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) --tag $(IMAGE) .

docker-run: docker-build ## Run the image on 127.0.0.1:PORT (default 8080)
	docker run --rm --publish 127.0.0.1:$(PORT):8080 $(IMAGE)

# cli.py runs here too, to compare with the image's `predict` and `batch`: with .venv's python
# when there is one (this target never makes it), else PYTHON.
docker-smoke: ## Build, run on a free port, curl /ready and /predict, compare predict/batch with cli.py
	BASE_IMAGE="$(BASE_IMAGE)" PYTHON="$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))" \
		scripts/docker_smoke.sh $(IMAGE)

# REGISTRY is checked before anything is built; log in to it first (docker login, or the
# cloud's helper: aws ecr get-login-password, gcloud auth configure-docker, az acr login).
# ECR, for ECS on Fargate (deploy/fargate/template.yaml) and SageMaker (deploy/sagemaker/):
#   aws ecr get-login-password | docker login --username AWS --password-stdin <account>.dkr.ecr.<region>.amazonaws.com
#   make deploy REGISTRY=<account>.dkr.ecr.<region>.amazonaws.com IMAGE=mlb-height:<tag>
# then pass <account>.dkr.ecr.<region>.amazonaws.com/mlb-height:<tag> as the template's ImageUri.
# This target calls no AWS API itself: it only builds, tags and pushes with docker.
deploy: ## Build IMAGE, tag it REGISTRY/IMAGE and push it: make deploy REGISTRY=... IMAGE=...
	@test -n "$(REGISTRY)" || { echo "Error: set REGISTRY, e.g. make deploy REGISTRY=ghcr.io/you IMAGE=mlb-height:1.0" >&2; exit 2; }
	$(MAKE) --no-print-directory docker-build IMAGE=$(IMAGE)
	docker tag $(IMAGE) $(REGISTRY)/$(IMAGE)
	docker push $(REGISTRY)/$(IMAGE)

EB_BUNDLE ?= build/mlb-height-eb.zip

.PHONY: eb-bundle

# Elastic Beanstalk (Docker platform): Dockerrun.aws.json naming the pushed image, and the
# .ebextensions health check, at the root of a zip (docs/deploying.md: eb create, eb deploy).
eb-bundle: ## Zip deploy/elastic-beanstalk as EB_BUNDLE, running IMAGE_URI: make eb-bundle IMAGE_URI=...
	@test -n "$(IMAGE_URI)" || { echo "Error: set IMAGE_URI, e.g. make eb-bundle IMAGE_URI=<registry>/mlb-height:1.0" >&2; exit 2; }
	$(PYTHON) scripts/eb_bundle.py "$(IMAGE_URI)" "$(EB_BUNDLE)"

LAMBDA_DIR ?= build/lambda
# The handler's import closure inside cookbook (scripts/lambda_files.py follows the imports; the
# lint checks that none of it needs a third-party library), and the model pair.
LAMBDA_FILES = $(shell $(PYTHON) scripts/lambda_files.py) model.joblib model.json

.PHONY: lambda-package

lambda-package: ## Put the Lambda package (cookbook.core, the handler, the model pair) in LAMBDA_DIR
	rm -rf "$(LAMBDA_DIR)"
	mkdir -p "$(LAMBDA_DIR)"
	for file in $(LAMBDA_FILES); do \
		mkdir -p "$(LAMBDA_DIR)/$$(dirname "$$file")" && cp "$$file" "$(LAMBDA_DIR)/$$file" || exit 1; \
	done

test-reliability: install data ## Run the reliability suite: fuzz, load, reload, crash, stop, faults (~6 min)
	$(BIN)/python -m pytest -m reliability -s tests/reliability
