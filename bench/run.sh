#!/usr/bin/env bash
# Same-run benchmark: a canned Anthropic upstream (nginx-light), nginx proxy_pass in front of it,
# and relaygate (Redis backend, embedded backend), non-stream and stream, at 1/16/64/256
# connections, measured with wrk. Load generator and upstream are pinned to CPU 0, the proxy or
# gateway under test to CPU 1. Writes a Markdown report to bench/results/latest.md.
#
#   bench/run.sh [--duration SECONDS] [--build-dir DIR]
#
# Everything binds 127.0.0.1 on free ports and is stopped at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION=5
BUILD="$ROOT/build"
CONNS=(1 16 64 256)
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --build-dir) BUILD="$2"; shift 2 ;;
    --conns) IFS=, read -r -a CONNS <<< "$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
"$ROOT/scripts/install-deps.sh"
if [ ! -x "$BUILD/host/relaygate" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DRG_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
RG="$BUILD/host/relaygate"
WORK="$(mktemp -d /tmp/rgbench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  # Ask the kernel for a free port, then release it for the service to bind.
  local port
  port=$(perl -MIO::Socket::INET -e 'my $s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1",LocalPort=>0,Listen=>1) or die; print $s->sockport')
  echo "$port"
}
wait_http() { # url
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null || wget -q -O /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "service at $1 did not come up" >&2; return 1
}
NCPU=$(nproc)
PIN_LOAD="taskset -c 0"
PIN_PROXY="taskset -c $(( NCPU > 1 ? 1 : 0 ))"

# ---- canned upstream ---------------------------------------------------------------------------
UP_PORT=$(free_port); PX_PORT=$(free_port); RGR_PORT=$(free_port); RGE_PORT=$(free_port)
REDIS_PORT=$(free_port)
mkdir -p "$WORK/www" "$WORK/nginx-up" "$WORK/nginx-px"
cat > "$WORK/www/json.txt" <<'JSON'
{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello! How can I help you today? This is a canned response used by the relaygate benchmark."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":24}}
JSON
{
  printf 'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}\n\n'
  printf 'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
  printf 'event: ping\ndata: {"type": "ping"}\n\n'
  for i in $(seq 1 20); do
    printf 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"word%02d "}}\n\n' "$i"
  done
  printf 'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
  printf 'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":40}}\n\n'
  printf 'event: message_stop\ndata: {"type":"message_stop"}\n\n'
} > "$WORK/www/sse.txt"

cat > "$WORK/nginx-up/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/nginx-up/nginx.pid;
error_log $WORK/nginx-up/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  client_body_temp_path $WORK/nginx-up/body;
  proxy_temp_path $WORK/nginx-up/proxy;
  fastcgi_temp_path $WORK/nginx-up/fcgi;
  uwsgi_temp_path $WORK/nginx-up/uwsgi;
  scgi_temp_path $WORK/nginx-up/scgi;
  server {
    listen 127.0.0.1:$UP_PORT;
    root $WORK/www;
    location = /health { return 200 "ok"; }
    location = /v1/messages {
      if (\$http_x_stainless_helper_method = "stream") { rewrite ^ /sse.txt last; }
      rewrite ^ /json.txt last;
    }
    location = /json.txt { internal; default_type application/json; error_page 405 =200 \$uri; }
    location = /sse.txt { internal; default_type text/event-stream; error_page 405 =200 \$uri; }
  }
}
NGX
cat > "$WORK/nginx-px/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/nginx-px/nginx.pid;
error_log $WORK/nginx-px/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/nginx-px/body;
  proxy_temp_path $WORK/nginx-px/proxy;
  fastcgi_temp_path $WORK/nginx-px/fcgi;
  uwsgi_temp_path $WORK/nginx-px/uwsgi;
  scgi_temp_path $WORK/nginx-px/scgi;
  upstream canned { server 127.0.0.1:$UP_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$PX_PORT;
    location = /health { return 200 "ok"; }
    location / {
      proxy_pass http://canned;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGX
$PIN_LOAD nginx -c "$WORK/nginx-up/nginx.conf" -p "$WORK/nginx-up" & PIDS+=($!)
$PIN_PROXY nginx -c "$WORK/nginx-px/nginx.conf" -p "$WORK/nginx-px" & PX_PID=$!; PIDS+=($PX_PID)
wait_http "http://127.0.0.1:$UP_PORT/health"
wait_http "http://127.0.0.1:$PX_PORT/health"

# ---- redis + two gateways ------------------------------------------------------------------------
mkdir -p "$WORK/redis"
$PIN_LOAD redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$WORK/redis" >/dev/null & PIDS+=($!)
for _ in $(seq 1 200); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

write_cfg() { # name port backend
  cat > "$WORK/$1.yaml" <<YAML
server: {host: 127.0.0.1, port: $2, worker_threads: 512}
storage:
  backend: $3
  data_dir: $WORK/$1-data
  redis: {url: "redis://127.0.0.1:$REDIS_PORT", key_prefix: "bench-$1:"}
security: {master_key: "bench-master-key-0123456789abcdef"}
logging: {level: warn, format: text}
plugins:
  directory: $BUILD/plugins
  enabled: [{name: claude}]
YAML
}
KEYS=()
start_gateway() { # name port backend -> pid in GW_PID, key in GW_KEY
  write_cfg "$1" "$2" "$3"
  "$RG" accounts add --config "$WORK/$1.yaml" --type claude-console --name canned \
    --base-url "http://127.0.0.1:$UP_PORT" --api-key sk-ant-bench-0000000000 >/dev/null
  GW_KEY=$("$RG" keys create --config "$WORK/$1.yaml" --name bench | tail -n 1)
  $PIN_PROXY "$RG" serve --config "$WORK/$1.yaml" > "$WORK/$1.out" 2> "$WORK/$1.err" &
  GW_PID=$!; PIDS+=($GW_PID)
  wait_http "http://127.0.0.1:$2/health"
}
start_gateway rgr "$RGR_PORT" redis; RGR_PID=$GW_PID; RGR_KEY=$GW_KEY
RGR_IDLE=$(awk '/VmRSS/{print $2}' /proc/$RGR_PID/status)
start_gateway rge "$RGE_PORT" embedded; RGE_PID=$GW_PID; RGE_KEY=$GW_KEY
RGE_IDLE=$(awk '/VmRSS/{print $2}' /proc/$RGE_PID/status)

# ---- wrk -----------------------------------------------------------------------------------------
BODY='{"model":"claude-sonnet-4-5-20250929","max_tokens":256,"messages":[{"role":"user","content":"Hello, benchmark"}]}'
mkwrk() { # file key mode
  cat > "$1" <<LUA
wrk.method = "POST"
wrk.body = '$(echo "$BODY" | sed "s/\"stream\"//")'
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["x-api-key"] = "$2"
LUA
  if [ "$3" = stream ]; then
    echo 'wrk.headers["x-stainless-helper-method"] = "stream"' >> "$1"
    echo "wrk.body = '{\"model\":\"claude-sonnet-4-5-20250929\",\"max_tokens\":256,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hello, benchmark\"}]}'" >> "$1"
  fi
  cat >> "$1" <<'LUA'
done = function(summary, latency, requests)
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write +
               summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.3f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errs))
end
LUA
}
declare -A URL=( [direct]="http://127.0.0.1:$UP_PORT" [nginx]="http://127.0.0.1:$PX_PORT"
                 [relaygate-redis]="http://127.0.0.1:$RGR_PORT" [relaygate-embedded]="http://127.0.0.1:$RGE_PORT" )
declare -A KEY=( [direct]="none" [nginx]="none" [relaygate-redis]="$RGR_KEY" [relaygate-embedded]="$RGE_KEY" )
TARGETS=(direct nginx relaygate-redis relaygate-embedded)
declare -A RES
for mode in json stream; do
  for c in "${CONNS[@]}"; do
    for t in "${TARGETS[@]}"; do
      mkwrk "$WORK/wrk.lua" "${KEY[$t]}" "$mode"
      # warm-up, then the measured run
      $PIN_LOAD wrk -t1 -c"$c" -d1s -s "$WORK/wrk.lua" "${URL[$t]}/v1/messages" >/dev/null 2>&1 || true
      line=$($PIN_LOAD wrk -t1 -c"$c" -d"${DURATION}s" --timeout 10s -s "$WORK/wrk.lua" \
               "${URL[$t]}/v1/messages" 2>&1 | awk '/^RESULT/{print $2, $3, $4, $5}')
      RES["$mode,$c,$t"]="$line"
      echo "$mode c=$c $t: rps p50ms p99ms errors = $line" >&2
    done
  done
done
RGR_PEAK=$(awk '/VmHWM/{print $2}' /proc/$RGR_PID/status)
RGE_PEAK=$(awk '/VmHWM/{print $2}' /proc/$RGE_PID/status)
PX_PEAK=$(awk '/VmHWM/{print $2}' /proc/$PX_PID/status)

# ---- report --------------------------------------------------------------------------------------
mkdir -p "$ROOT/bench/results"
OUT="$ROOT/bench/results/latest.md"
{
  echo "Run: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, ${DURATION}s per cell, wrk -t1, load+upstream on CPU 0, proxy/gateway on CPU 1."
  echo
  for mode in json stream; do
    echo "### ${mode/json/non-stream (JSON)}"
    echo
    echo "| conns | target | req/s | p50 ms | p99 ms | p50 added over direct ms | errors | req/s vs nginx |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|"
    for c in "${CONNS[@]}"; do
      read -r drps dp50 dp99 derr <<< "${RES[$mode,$c,direct]}"
      read -r nrps np50 np99 nerr <<< "${RES[$mode,$c,nginx]}"
      for t in "${TARGETS[@]}"; do
        read -r rps p50 p99 err <<< "${RES[$mode,$c,$t]}"
        added=$(awk -v a="$p50" -v b="$dp50" 'BEGIN{printf "%.3f", a-b}')
        ratio=$(awk -v a="$rps" -v b="$nrps" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-"}')
        echo "| $c | $t | $rps | $p50 | $p99 | $added | $err | $ratio |"
      done
    done
    echo
  done
  echo "Memory (kB): relaygate-redis idle RSS $RGR_IDLE, peak $RGR_PEAK; relaygate-embedded idle RSS $RGE_IDLE, peak $RGE_PEAK; nginx proxy peak $PX_PEAK."
} > "$OUT"
cat "$OUT"
