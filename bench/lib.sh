# Shared by the bench scripts: a temp dir that is cleaned up with every
# process started into `pids`, loopback ports, bounded waits, and a
# throwaway fleet (server + one enrolled client) in "$work".
# The caller sets: bin (release dir).

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # wait_for <description> <command...>; gives up after 10 s
  local what=$1; shift
  for _ in $(seq 1 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "timed out waiting for $what" >&2; exit 1
}

# start_fleet <client binary> [data dir name] [extra server.toml line]: a
# server in "$work/<name>" (default srv) with the client `bench-edge`
# connected; sets srv, api, client_pid and PORTUNUS_OPERATOR_TOKEN.
start_fleet() {
  local client_bin=$1
  srv="$work/${2:-srv}"; mkdir -p "$srv"
  api="127.0.0.1:$(free_port)"
  cat > "$srv/server.toml" <<TOML
control_listen = "127.0.0.1:$(free_port)"
operator_http_listen = "$api"
metrics_listen = "127.0.0.1:$(free_port)"
${3:-}
TOML
  export HOME=$work
  export PORTUNUS_OPERATOR_TOKEN
  PORTUNUS_OPERATOR_TOKEN=$("$bin/portunus-server" --data-dir "$srv" bootstrap-superadmin --name bench 2>/dev/null)
  RUST_LOG=warn "$bin/portunus-server" --data-dir "$srv" serve 2>"$srv/server.log" & pids+=($!)
  wait_for "server" "$bin/portunus-server" --data-dir "$srv" list-clients
  local uri
  uri=$("$bin/portunus-server" --data-dir "$srv" enroll-client bench-edge 2>/dev/null | cut -d"'" -f2)
  "$client_bin" enroll "$uri" --out "$srv/bundle.json" >/dev/null
  RUST_LOG=warn "$client_bin" --bundle "$srv/bundle.json" 2>"$srv/client.log" & client_pid=$!
  pids+=($client_pid)
  wait_for "client connection" sh -c "'$bin/portunus-server' --data-dir '$srv' list-clients | grep -q ' connected'"
}

# start_nginx <nginx binary>: a loopback nginx in "$work/nginx" (one
# worker, a fixed small answer, no logs, no keep-alive); sets web (its port).
start_nginx() {
  local nginx=$1
  web=$(free_port)
  mkdir -p "$work/nginx"
  cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 0;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server { listen 127.0.0.1:$web; location / { return 200 "ok\n"; } }
}
CONF
  "$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/stderr.log" & pids+=($!)
  wait_for "nginx" sh -c "ss -ltn | grep -q '127.0.0.1:$web '"
}
