#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with Schemathesis.
#
# Builds the debug server, starts it on 127.0.0.1 with a free port and a
# temporary SQLite data folder, registers a user for a bearer token, and
# runs `schemathesis run` against /openapi.json. It fails when a response
# is a 5xx, has a status or content type the document does not list for
# that operation, or a body that does not match the documented schema.
#
# Usage: scripts/api-fuzz.sh
# Settings (environment variables):
#   API_FUZZ_MAX_EXAMPLES  test cases per operation and phase (default 25)
#   API_FUZZ_SEED          Schemathesis seed, to replay a run (default random)
# Schemathesis is installed once into target/api-fuzz/venv.
set -euo pipefail

cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${API_FUZZ_MAX_EXAMPLES:-25}"
WORK_DIR=target/api-fuzz
VENV="$WORK_DIR/venv"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

step() {
    printf '\n==> %s\n' "$*"
}

step "installing schemathesis $SCHEMATHESIS_VERSION"
mkdir -p "$WORK_DIR"
if [[ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != *" $SCHEMATHESIS_VERSION" ]]; then
    python3.11 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

step "building the server"
cargo build --locked --bin confab

data_dir="$(mktemp -d)"
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$data_dir"
}
trap stop_server EXIT

# Another process may take the port between this probe and the bind; the
# server then fails to start and the wait below reports it.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

step "starting the server on $base"
# The fuzzer must never reach a developer's own database or Redis. It sends
# thousands of requests from one address, so the throttle limits are raised
# far above that: a 429 would only hide the handlers behind it.
env -u DATABASE_URL -u REDIS_URL \
    CONFAB_LOG="${API_FUZZ_LOG:-warn}" \
    target/debug/confab --addr "127.0.0.1:$port" --data-dir "$data_dir" \
    --auth-requests-per-minute 100000 --registrations-per-hour 100000 \
    --login-max-failures 100000 \
    >"$WORK_DIR/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
    if curl --silent --fail "$base/healthz" >/dev/null; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "the server exited during startup; its log:" >&2
        cat "$WORK_DIR/server.log" >&2
        exit 1
    fi
    sleep 0.2
done
if ! curl --silent --fail "$base/healthz" >/dev/null; then
    echo "the server did not answer $base/healthz within 20 s" >&2
    exit 1
fi

# Sends a JSON request and prints one field of the JSON response, named by
# a dotted path such as `user.id`.
#   call METHOD PATH BODY FIELD [TOKEN]
call() {
    local auth=()
    if [[ -n "${5:-}" ]]; then
        auth=(--header "Authorization: Bearer $5")
    fi
    curl --silent --fail --show-error --request "$1" "$base$2" \
        --header 'Content-Type: application/json' "${auth[@]}" --data "$3" |
        python3 -c '
import functools, json, sys
print(functools.reduce(lambda value, key: value[key], sys.argv[1].split("."), json.load(sys.stdin)))
' "$4"
}

step "registering an administrator and a second user"
# The fuzzing user is an administrator so that the /admin handlers run past
# their role check. Those handlers reject changing or disabling the caller itself.
password="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
admin_email="fuzz-admin@example.test"
call POST /auth/register "{\"email\":\"$admin_email\",\"password\":\"$password\"}" session_id >/dev/null
env -u DATABASE_URL CONFAB_LOG=warn \
    target/debug/confab user set-role --email "$admin_email" --role admin --data-dir "$data_dir"
# Logging in after the role change gives a token that carries the new role.
token="$(call POST /auth/login "{\"email\":\"$admin_email\",\"password\":\"$password\"}" access_token)"
peer_id="$(call POST /auth/register "{\"email\":\"fuzz-peer@example.test\",\"password\":\"$password\"}" user.id)"

step "creating a chat with a message"
# Without a stored chat and message, every /chats/{chat_id} request ends at 404.
chat_id="$(call POST /chats "{\"kind\":\"group\",\"title\":\"fuzz\",\"member_ids\":[$peer_id]}" id "$token")"
call POST "/chats/$chat_id/messages" '{"body":"hello"}' id "$token" >/dev/null

run_schemathesis() {
    local seed=()
    if [[ -n "${API_FUZZ_SEED:-}" ]]; then
        seed=(--seed "$API_FUZZ_SEED")
    fi
    # Run from the work folder, where Schemathesis keeps its .schemathesis cache.
    (cd "$WORK_DIR" && venv/bin/schemathesis run "$base/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --phases examples,coverage,fuzzing \
        --max-examples "$MAX_EXAMPLES" \
        --workers 2 \
        --request-timeout 10 \
        --generation-database none \
        --no-color \
        "${seed[@]}" \
        "$@")
}

# Logging out, or ending a session whose id Schemathesis read from
# GET /auth/sessions, revokes the token every other request uses, so these
# operations run after everything else.
ending_session=(/auth/logout /auth/logout-all "/auth/sessions/{id}")

step "fuzzing every operation but those that end the session"
run_schemathesis "${ending_session[@]/#/--exclude-path=}"

step "fuzzing the operations that end the session"
run_schemathesis "${ending_session[@]/#/--include-path=}"

step "the API matches its OpenAPI document"
