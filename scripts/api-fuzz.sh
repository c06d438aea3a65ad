#!/usr/bin/env bash
# Holds a live server to its published contract: Schemathesis reads
# GET /v1/openapi.json and fuzzes every operation, once as a superadmin and
# once as a plain user, with stateful links (enroll a client, push a rule,
# read its stats, remove it). Any 5xx, any answer the document does not
# describe, any undocumented status fails the run.
#
# Needs the debug binaries (`cargo build --workspace`) and python3; installs
# the pinned Schemathesis into a virtualenv under target/ when missing.
# Everything runs on loopback in a temp dir. Environment:
#   API_FUZZ_SECONDS  time budget per identity (default 75)
#   API_FUZZ_SEED     a seed to replay a run
#   API_FUZZ_REPORTS  where Schemathesis' run reports go (default: the temp
#                     dir, removed at exit)
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
target=${CARGO_TARGET_DIR:-target}
bin=$target/debug
venv=$target/api-fuzz-venv
budget=${API_FUZZ_SECONDS:-75}

for b in portunus-server portunus-client; do
  [ -x "$bin/$b" ] || { echo "$bin/$b is missing: run cargo build --workspace" >&2; exit 1; }
done
if ! "$venv/bin/st" --version 2>/dev/null | grep -qF "$ST_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# The binaries read these; the run must not pick up the caller's.
for v in $(env | grep -oE '^(PORTUNUS|XDG)_[A-Z_]*' || true); do unset "$v"; done
export HOME=$work

# until <seconds> <description> <command...>: polls until the command
# succeeds, failing the run at the deadline.
until_ok() {
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "timed out waiting for $what" >&2
      tail -n 20 "$work/server.log" "$work/client.log" 2>/dev/null >&2 || true
      exit 1
    fi
    sleep 0.1
  done
}

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# api <token> <method> <path> [json body]: one call; fails on a non-2xx.
api() {
  local args=(-sS --fail-with-body -X "$2" -H "Authorization: Bearer $1")
  [ $# -ge 4 ] && args+=(-H 'Content-Type: application/json' --data "$4")
  curl "${args[@]}" "$url$3"
}

srv=$work/srv
reports=${API_FUZZ_REPORTS:-$work/reports}
mkdir -p "$srv" "$work/edge" "$reports"
cat >"$srv/server.toml" <<'TOML'
control_listen = "127.0.0.1:0"
operator_http_listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
shutdown_drain_timeout_secs = 2
TOML
admin=$("$bin/portunus-server" --data-dir "$srv" bootstrap-superadmin --name Admin)
RUST_LOG=warn,portunus_server=info "$bin/portunus-server" --data-dir "$srv" serve 2>"$work/server.log" &
pids+=($!)

listening() {
  python3 - "$work/server.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    if v.get("message") == "listening":
        print(v["operator_http"])
        sys.exit(0)
sys.exit(1)
PY
}
until_ok 30 "the server to listen" listening
url=http://$(listening)

# A connected client, so pushes reach a real edge and answer 201.
uri=$(api "$admin" POST /v1/client-enrollments '{"name":"edge-01"}' | json_field uri)
"$bin/portunus-client" enroll "$uri" --out "$work/edge/bundle.json" >/dev/null
RUST_LOG=warn "$bin/portunus-client" --bundle "$work/edge/bundle.json" \
  --reconnect-initial-delay-ms 50 --reconnect-max-delay-secs 1 \
  --stats-report-interval-secs 1 --shutdown-drain-timeout-secs 1 2>"$work/client.log" &
pids+=($!)
connected() { api "$admin" GET /v1/clients/edge-01 | grep -q '"connected":true'; }
until_ok 30 "edge-01 to connect" connected

# A plain user with a token of its own and a grant on the edge.
api "$admin" POST /v1/users \
  '{"user_id":"fuzz-user","display_name":"Fuzz User","password":"fuzz-user-password","temporary":false}' >/dev/null
user=$(api "$admin" POST /v1/users/fuzz-user/credentials '{"label":"api-fuzz"}' | json_field token)
api "$admin" POST /v1/grants \
  '{"user_id":"fuzz-user","client":"edge-01","listen_port_start":20000,"listen_port_end":29999,"protocols":["tcp","udp"]}' >/dev/null

# A rule of the user's that stays: reads of a rule by id reach a real one
# half the time (random ids only ever answer 404), while the stateful phase
# pushes, edits and removes rules of its own.
rule=$(api "$user" POST '/v1/rules?ack_timeout_ms=5000' \
  '{"client":"edge-01","listen_port":20443,"targets":[{"host":"127.0.0.1","port":9}]}' | json_field rule_id)
printf '"%s"\n' "$rule" >"$work/rules.dict"
config=$work/api-fuzz.toml
cp scripts/api-fuzz.toml "$config"
cat >>"$config" <<TOML

[dictionaries.existing-rule]
from-file = "$work/rules.dict"

[[operations]]
include-operation-id = ["getRule", "getRuleStats", "streamRuleStats"]
parameters = { "path.id" = { dictionary = "existing-rule", probability = 0.5 } }
TOML

# Fuzz the document as served; from a file rather than its URL, since
# Schemathesis leaves out the operation a schema URL names.
curl -sS --fail-with-body "$url/v1/openapi.json" >"$work/openapi.json"

# summary <identity>: operations, test cases and checks from the run's
# event log.
summary() {
  python3 - "$1" "$reports/$1.ndjson" <<'PY'
import json, sys
who, path = sys.argv[1], sys.argv[2]
ops, cases, checks, failed = set(), 0, 0, 0
for line in open(path):
    event = json.loads(line).get("ScenarioFinished")
    if not event:
        continue
    rec = event["recorder"]
    ops.add(rec["label"])
    for results in (rec.get("checks") or {}).values():
        cases += 1
        checks += len(results)
        failed += sum(r["status"] != "success" for r in results)
ops.discard("Stateful tests")
print(f"api-fuzz: {who}: {len(ops)} operations, {cases} test cases, "
      f"{checks} checks, {failed} failed")
PY
}

seed=()
[ -n "${API_FUZZ_SEED:-}" ] && seed=(--seed "$API_FUZZ_SEED")
failed=()
for who in superadmin user; do
  token=$admin
  [ "$who" = user ] && token=$user
  echo "== schemathesis as the $who (up to ${budget}s)"
  if ! "$venv/bin/st" --config-file "$config" run "$work/openapi.json" --url "$url" \
    -H "Authorization: Bearer $token" --max-time "$budget" --workers 1 "${seed[@]}" \
    --report json,ndjson --report-json-path "$reports/$who.json" \
    --report-ndjson-path "$reports/$who.ndjson"; then
    failed+=("$who")
  fi
  summary "$who"
done

if grep -q '"level":"ERROR"' "$work/server.log"; then
  echo "the server logged errors:" >&2
  grep '"level":"ERROR"' "$work/server.log" >&2
  failed+=(server-log)
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "api-fuzz: findings for: ${failed[*]}" >&2
  exit 1
fi
echo "api-fuzz: no findings"
