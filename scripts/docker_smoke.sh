#!/usr/bin/env bash
# Build the image, run it on a free loopback port and check it answers like the service should.
#
#   scripts/docker_smoke.sh [--no-build] [IMAGE]
#
# IMAGE defaults to mlb-height:smoke. BASE_IMAGE (environment) is passed to the build when set.
# --no-build checks an image that already exists (CI builds it with docker/build-push-action).
# PYTHON (default python3; `make docker-smoke` passes .venv/bin/python when there is one) runs
# cli.py on this machine, to compare with the image's `predict` and `batch` byte for byte.
# Exits non-zero on the first failure, and always stops and removes its container.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=1
if [[ "${1:-}" == "--no-build" ]]; then
  BUILD=0
  shift
fi
IMAGE=${1:-mlb-height:smoke}
# Not the default 8080: proves the image honours PORT, as Cloud Run and App Runner set it.
CONTAINER_PORT=8123
CONTAINER="mlb-height-smoke-$$"
PYTHON=${PYTHON:-python3}

fail() {
  echo "docker-smoke: FAIL: $*" >&2
  if docker inspect "$CONTAINER" >/dev/null 2>&1; then
    echo "--- container logs (last 30 lines) ---" >&2
    docker logs --tail 30 "$CONTAINER" >&2 || true
  fi
  exit 1
}
SAGEMAKER="mlb-height-sagemaker-$$"
cleanup() { docker rm --force "$CONTAINER" "$SAGEMAKER" >/dev/null 2>&1 || true; }
trap cleanup EXIT
now() { date +%s.%N; }
seconds_since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'; }

command -v docker >/dev/null || fail "docker is not installed"
docker info >/dev/null 2>&1 || fail "no Docker engine answers (start one, e.g. container-engine.sh up)"

# ------------------------------------------------------------------------- build
if [[ $BUILD == 1 ]]; then
  build_args=()
  [[ -n "${BASE_IMAGE:-}" ]] && build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
  started=$(now)
  id_file=$(mktemp)
  docker build --quiet "${build_args[@]}" --iidfile "$id_file" --tag "$IMAGE" . >/dev/null \
    || fail "docker build failed"
  echo "docker-smoke: built $IMAGE in $(seconds_since "$started") s"
  # From here on, the image this build made, even if the tag is re-used meanwhile (a shared
  # engine may build the same tag from another checkout).
  IMAGE=$(cat "$id_file")
  rm -f "$id_file"
fi
size_bytes=$(docker image inspect --format '{{.Size}}' "$IMAGE") || fail "no image $IMAGE"
echo "docker-smoke: image size $((size_bytes / 1000000)) MB"

# ------------------------------------------------------------ image, not running
user=$(docker image inspect --format '{{.Config.User}}' "$IMAGE")
[[ -n "$user" && "${user%%:*}" != 0 && "${user%%:*}" != root ]] \
  || fail "image runs as root (USER is '${user:-unset}')"
docker image inspect --format '{{json .Config.ExposedPorts}}' "$IMAGE" | grep -q '"8080/tcp"' \
  || fail "image does not EXPOSE 8080"
docker image inspect --format '{{json .Config.Cmd}}' "$IMAGE" | grep -q '"python","-m","cookbook.web.server"' \
  || fail "CMD is not python -m cookbook.web.server"
# shellcheck disable=SC2016  # expanded by the container's shell, not this one
docker run --rm --entrypoint sh "$IMAGE" -c '
  for tool in gcc cc c++ g++ clang make; do
    command -v "$tool" >/dev/null && { echo "compiler $tool in the image"; exit 1; }
  done
  for unwanted in tests htwtmlb.csv .git .venv notebooks requirements-dev.txt \
    cookbook/web/lambda_handler.py; do
    [ -e "/app/$unwanted" ] && { echo "/app/$unwanted is in the image"; exit 1; }
  done
  [ -w /app ] && { echo "the service user can write /app"; exit 1; }
  exit 0' || fail "image contents"
# The training and batch tools stay out of the image (the Dockerfile installs the serving set).
read -r -a tools <<<"$(grep -v '^#' requirements-tools.txt | sed 's/==.*//' | tr '\n' ' ')"
docker run --rm --entrypoint python "$IMAGE" -c '
import importlib.util, sys
found = [name for name in sys.argv[1:] if importlib.util.find_spec(name)]
sys.exit(f"tools in the image: {found}" if found else 0)' "${tools[@]}" || fail "image contents"
# The verified, unpickled scikit-learn path (used when a model cannot be folded) still works
# after the build stage removed the libraries' test suites.
docker run --rm --entrypoint python "$IMAGE" -c '
from cookbook.lifecycle.artifacts import EstimatorPredictor, load_estimator, load_predictor
folded = load_predictor()
assert folded.is_folded
unpickled = EstimatorPredictor(folded.metadata, folded.path, load_estimator())
row = folded.probe_row()
assert abs(unpickled.predict_row(row) - folded.predict_row(row)) < 1e-6
' || fail "scikit-learn fallback path in the image"

# ----------------------------------------------------------------------- running
started=$(now)
# Docker picks a free loopback port (-p 127.0.0.1::PORT); the health check runs every second
# here so the smoke test sees the image's own HEALTHCHECK turn healthy without waiting 30 s.
# Locked down as deploy/kubernetes runs it: read-only root, writable /tmp only, no capabilities.
docker run --detach --name "$CONTAINER" --env PORT=$CONTAINER_PORT \
  --publish "127.0.0.1::$CONTAINER_PORT" --health-interval 1s --health-start-period 30s \
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
  "$IMAGE" >/dev/null || fail "docker run failed"
host_port=$(docker port "$CONTAINER" "$CONTAINER_PORT/tcp" | head -n 1)
host_port=${host_port##*:}
base_url="http://127.0.0.1:$host_port"

for _ in $(seq 120); do
  curl --silent --fail --max-time 2 "$base_url/ready" >/dev/null && break
  [[ "$(docker inspect --format '{{.State.Running}}' "$CONTAINER")" == true ]] \
    || fail "container exited before it was ready"
  sleep 0.5
done
ready=$(curl --silent --show-error --fail --max-time 5 "$base_url/ready") || fail "/ready never answered 200"
echo "docker-smoke: ready on $base_url in $(seconds_since "$started") s: $ready"

# The cookbook's exact request (no Content-Type header) and its exact answer.
headers=$(mktemp)
answer=$(curl --silent --show-error --max-time 5 --dump-header "$headers" \
  --data '{"Weight": 200}' "$base_url/predict") || fail "POST /predict failed"
expected='{"prediction": {"height_inches": 73.6, "height_human_readable": "6 foot, 2 inches"}}'
# The cookbook's fields exactly as they were, and the prediction interval beside them.
"$PYTHON" -c '
import json, sys
got, want = json.loads(sys.argv[1])["prediction"], json.loads(sys.argv[2])["prediction"]
sys.exit(not (want.items() <= got.items() and {"low", "high", "coverage"} <= got["interval"].keys()))
' "$answer" "$expected" || fail "POST /predict answered $answer, expected $expected and an interval"
grep -qi '^x-model-version: ' "$headers" || fail "/predict has no X-Model-Version header"
rm -f "$headers"
echo "docker-smoke: POST /predict {\"Weight\": 200} -> $answer"

status=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 5 \
  --data '{"Weight": "heavy"}' "$base_url/predict")
[[ "$status" == 400 ]] || fail "a bad weight answered $status, expected 400"

# The page at / renders from cookbook/web/templates/ and links its own static files
# (cookbook/web/static/): both must ship.
page=$(curl --silent --show-error --fail --max-time 5 "$base_url/?weight=200") \
  || fail "GET / failed (cookbook/web/templates/ or static/ missing from the image?)"
grep -q "Predict the Height From Weight of MLB Players" <<<"$page" || fail "GET / lacks its heading"
grep -q "6 foot, 2 inches" <<<"$page" || fail "GET /?weight=200 did not render the answer"
curl --silent --fail --max-time 5 --output /dev/null "$base_url/static/page.js" \
  || fail "GET /static/page.js failed"
echo "docker-smoke: GET / renders the page and its script"

# The Open Inference Protocol and SageMaker's contract answer from the same process.
v2=$(curl --silent --show-error --fail --max-time 5 --header 'Content-Type: application/json' \
  --data '{"inputs": [{"name": "Weight", "datatype": "FP64", "shape": [1], "data": [200]}]}' \
  "$base_url/v2/models/mlb-height/infer") || fail "POST /v2/models/mlb-height/infer failed"
grep -q '"6 foot, 2 inches"' <<<"$v2" || fail "V2 infer answered $v2"
curl --silent --fail --max-time 5 "$base_url/v2/health/ready" | grep -q '"ready": true' \
  || fail "GET /v2/health/ready is not ready"
curl --silent --fail --max-time 5 --output /dev/null "$base_url/ping" || fail "GET /ping failed"
csv=$(curl --silent --show-error --fail --max-time 5 --header 'Content-Type: text/csv' \
  --header 'Accept: text/csv' --data-binary $'200\n180\n' "$base_url/invocations") \
  || fail "POST /invocations (text/csv) failed"
[[ "$csv" == $'73.6\n72.4' ]] || fail "POST /invocations answered '$csv'"
echo "docker-smoke: V2 infer, /v2/health/ready, /ping and /invocations (CSV) answer"

for _ in $(seq 60); do
  health=$(docker inspect --format '{{.State.Health.Status}}' "$CONTAINER")
  [[ "$health" == healthy ]] && break
  sleep 0.5
done
[[ "$health" == healthy ]] || fail "HEALTHCHECK status is '$health', expected healthy"
uid=$(docker exec "$CONTAINER" id -u)
[[ "$uid" != 0 ]] || fail "the service runs as root"
echo "docker-smoke: HEALTHCHECK healthy; service runs as uid $uid"

# The server finishes in-flight requests on SIGTERM and exits 0: what an orchestrator sends.
started=$(now)
docker stop --time 25 "$CONTAINER" >/dev/null || fail "docker stop failed"
code=$(docker inspect --format '{{.State.ExitCode}}' "$CONTAINER")
[[ "$code" == 0 ]] || fail "container exited with $code after SIGTERM, expected 0"
echo "docker-smoke: stopped cleanly (exit 0) in $(seconds_since "$started") s"
docker rm "$CONTAINER" >/dev/null || fail "docker rm failed"

# SageMaker's start, `docker run IMAGE serve`: port 8080, the model pair in /opt/ml/model.
model_dir=$(mktemp -d)
cp model.joblib model.json "$model_dir/"
chmod 0755 "$model_dir" && chmod 0644 "$model_dir"/*
docker run --detach --name "$SAGEMAKER" --publish 127.0.0.1::8080 \
  --volume "$model_dir:/opt/ml/model:ro" --read-only --tmpfs /tmp "$IMAGE" serve >/dev/null \
  || fail "docker run IMAGE serve failed"
sm_port=$(docker port "$SAGEMAKER" 8080/tcp | head -n 1)
sm_url="http://127.0.0.1:${sm_port##*:}"
for _ in $(seq 60); do
  curl --silent --fail --max-time 2 "$sm_url/ping" >/dev/null && break
  sleep 0.5
done
sm=$(curl --silent --show-error --fail --max-time 5 --header 'Content-Type: application/json' \
  --data '{"Weight": 200}' "$sm_url/invocations") || fail "serve: /invocations failed"
grep -q '"6 foot, 2 inches"' <<<"$sm" || fail "serve: /invocations answered $sm"
docker rm --force "$SAGEMAKER" >/dev/null
# A tampered pair in /opt/ml/model is refused at start, in one line.
printf 'tampered' > "$model_dir/model.joblib"
refused=$(docker run --rm --volume "$model_dir:/opt/ml/model:ro" --read-only --tmpfs /tmp \
  "$IMAGE" serve 2>&1) && fail "serve started with a tampered model pair"
grep -q "does not match its metadata" <<<"$refused" || fail "serve refused with: $refused"
rm -rf "$model_dir"
echo "docker-smoke: serve answers /ping and /invocations from /opt/ml/model; refuses a tampered pair"

# ------------------------------------------------------------- the image as a CLI
# `docker run IMAGE predict ARGS` and `docker run -i IMAGE batch < rows.csv` answer as
# `python cli.py ARGS` and `python cli.py --input - < rows.csv` do here: the same stdout,
# byte for byte, and the same exit code. Both use the committed model pair.
env -u MODEL_PATH "$PYTHON" cli.py --version >/dev/null 2>&1 \
  || fail "$PYTHON cannot run cli.py here (set PYTHON to the project's virtualenv's python)"
cli_dir=$(mktemp -d)
printf 'Weight\n180\n200\n250\n' >"$cli_dir/rows.csv"
printf 'Weight\n180\nheavy\n' >"$cli_dir/rejects.csv"
# same_as_cli INPUT EXIT_CODE IMAGE_ARGS... -- CLI_ARGS...
same_as_cli() {
  local input=$1 expected=$2 image_args=() got=0 want=0
  shift 2
  while [[ "$1" != -- ]]; do image_args+=("$1"); shift; done
  shift
  docker run --rm -i --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
    "$IMAGE" "${image_args[@]}" <"$input" >"$cli_dir/image.out" 2>"$cli_dir/image.err" || got=$?
  env -u MODEL_PATH "$PYTHON" cli.py "$@" <"$input" >"$cli_dir/cli.out" 2>"$cli_dir/cli.err" || want=$?
  cmp -s "$cli_dir/image.out" "$cli_dir/cli.out" \
    || fail "IMAGE ${image_args[*]} printed '$(cat "$cli_dir/image.out")' ($(cat "$cli_dir/image.err")); cli.py $* printed '$(cat "$cli_dir/cli.out")'"
  [[ "$got" == "$want" && "$got" == "$expected" ]] \
    || fail "IMAGE ${image_args[*]} exited $got, cli.py $* exited $want, expected $expected"
  echo "docker-smoke: IMAGE ${image_args[*]} = cli.py $* (exit $got, $(wc -c <"$cli_dir/cli.out") bytes)"
}
same_as_cli /dev/null 0 predict --weight 180 -- --weight 180
same_as_cli /dev/null 0 predict --weight 200 --json -- --weight 200 --json
same_as_cli /dev/null 2 predict --weight heavy -- --weight heavy
same_as_cli "$cli_dir/rows.csv" 0 batch -- --input -
same_as_cli "$cli_dir/rejects.csv" 3 batch -- --input -
rm -rf "$cli_dir"
echo "docker-smoke: OK"
