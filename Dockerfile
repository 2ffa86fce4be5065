# The height-from-weight service: the production server (granian) serving the app as a
# non-root user.
#
#   docker build -t mlb-height .                       # or: make docker-build
#   docker run --rm -p 127.0.0.1:8080:8080 mlb-height  # or: make docker-run
#
# BASE_IMAGE must provide `python` on PATH with the venv module. The default is a pinned
# Python minor version; override it to build from a mirror, a digest or a local image.
ARG BASE_IMAGE=python:3.12-slim

# ---------------------------------------------------------------- build stage
FROM ${BASE_IMAGE} AS build

# A virtualenv of its own (not the base image's site-packages) is one folder the final
# stage can copy whole: everything pip wrote, nothing else.
ENV VIRTUAL_ENV=/opt/service-venv \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv "$VIRTUAL_ENV"
# The serving set only: the training and batch tools (requirements-tools.txt: Dask, pyarrow,
# the ONNX converters; about 245 MB) are never imported by the service.
COPY requirements-serve.txt /tmp/requirements-serve.txt
# Binary wheels only: the build never compiles, so no compiler is needed in either stage.
# Then drop what serving never runs: the libraries' own test suites (about 110 MB) and the
# installers (pip, setuptools), so the final image cannot pip-install anything either.
RUN "$VIRTUAL_ENV/bin/python" -m pip install --only-binary=:all: -r /tmp/requirements-serve.txt \
    && find "$VIRTUAL_ENV" -depth -type d -name tests \
        \( -path '*/site-packages/numpy/*' -o -path '*/site-packages/scipy/*' \
        -o -path '*/site-packages/sklearn/*' -o -path '*/site-packages/pandas/*' \) \
        -exec rm -rf {} + \
    && "$VIRTUAL_ENV/bin/python" -m pip uninstall --yes pip setuptools

# ---------------------------------------------------------------- final stage
FROM ${BASE_IMAGE}

# A fixed numeric id, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
ARG APP_UID=10001
RUN useradd --system --uid "${APP_UID}" --user-group --no-create-home --home-dir /app app

ENV VIRTUAL_ENV=/opt/service-venv \
    PATH=/opt/service-venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080 \
    WEB_CONCURRENCY=2

COPY --from=build /opt/service-venv /opt/service-venv
WORKDIR /app
# Every top-level module (the service and its CLIs), gunicorn.conf.py and the verified model
# pair; .dockerignore keeps everything else (tests, data, notebooks, .git) out of the context.
# Owned by root and read-only for the service user: it cannot rewrite its own code or model.
COPY *.py model.joblib model.json ./
# The cookbook package the service imports, with the page at / inside it
# (cookbook/web/templates/ and cookbook/web/static/).
COPY cookbook/ cookbook/
# Bytecode compiled once at build: PYTHONDONTWRITEBYTECODE keeps the image read-only at run
# time, so without it every start (the server's, every `docker run IMAGE predict`) compiles it.
RUN python -m compileall -q cookbook ./*.py

USER ${APP_UID}:${APP_UID}
EXPOSE 8080
# The server writes only to /tmp (metrics files, reload snapshots). As a volume, a read-only
# container (Fargate, Kubernetes) gets it writable with the image's own 1777 mode.
VOLUME ["/tmp"]
# Slim images have no curl: ask /health with the Python that is already there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=4)"]
# The production server binds 0.0.0.0:$PORT (Cloud Run and App Runner set PORT) with
# WEB_CONCURRENCY workers, reads whole requests before the app sees them, and answers
# overload with 503; never app.py, never a debugger.
# `docker run IMAGE` runs CMD as given; `docker run IMAGE serve` is SageMaker's start: port 8080,
# and the model pair in SM_MODEL_DIR (/opt/ml/model) when one is there. The image is also the CLI:
# `docker run IMAGE predict --weight 180` is `python cli.py --weight 180`, and
# `docker run -i IMAGE batch < rows.csv` is `python cli.py --input -` (cookbook/web/container.py).
ENTRYPOINT ["python", "-m", "cookbook.web.container"]
CMD ["python", "-m", "cookbook.web.server"]
