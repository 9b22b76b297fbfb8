#!/usr/bin/env bash
# Same-run benchmark: a canned Anthropic upstream (nginx-light), nginx proxy_pass in front of it,
# and relaygate (Redis backend, embedded backend), non-stream and stream, at 1/16/64/256
# connections, measured with wrk. Load generator and upstream are pinned to CPU 0, the proxy or
# gateway under test to CPU 1. Writes a Markdown report to bench/results/latest.md.
#
#   bench/run.sh [--duration SECONDS] [--warmup SECONDS] [--conns 1,16,64,256] [--build-dir DIR]
#                [--out FILE] [--hold] [--limited]
#
# --limited gives the benchmark keys limits that never bind (concurrency, a request window, a
# daily and a total cost limit), so every request pays admission and settlement; without it the
# keys have no limits and requests pay only the settlement (usage booking).
#
# --hold starts everything, runs the body checks, prints URLs, keys and pids, and waits (for
# profiling a target with your own load); Ctrl-C stops it all.
#
# Every measured cell is checked: wrk saw no socket error, no timeout and no status >= 400; the
# upstream's request counter (nginx stub_status) grew by at least the number of responses wrk
# counted (so the proxy really relayed); and before the runs each target's response body is
# compared byte for byte with the canned body. The gateways' own request counters must show no
# non-200 on /v1/messages at the end. Any failed check makes the script exit non-zero.
#
# Everything binds 127.0.0.1 on free ports and is stopped at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION=5
WARMUP=1
BUILD="$ROOT/build"
CONNS=(1 16 64 256)
OUT="$ROOT/bench/results/latest.md"
HOLD=0
KEY_FLAGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --build-dir) BUILD="$2"; shift 2 ;;
    --conns) IFS=, read -r -a CONNS <<< "$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --hold) HOLD=1; shift ;;
    --limited) KEY_FLAGS=(--concurrency 100000 --rate-window-min 60 --rate-requests 1000000000
                          --daily-cost 1000000 --total-cost 100000000); shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
"$ROOT/scripts/install-deps.sh"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DRG_BUILD_TESTS=OFF >/dev/null
fi
BUILD_TYPE=$(awk -F= '/^CMAKE_BUILD_TYPE:/{print $2}' "$BUILD/CMakeCache.txt")
cmake --build "$BUILD" -j"$(nproc)" --target relaygate rg_claude >/dev/null
RG="$BUILD/host/relaygate"
WORK="$(mktemp -d /tmp/rgbench.XXXXXX)"
chmod 755 "$WORK" # the nginx workers (www-data) read the canned bodies from here
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
FAILURES=()
fail() { FAILURES+=("$*"); echo "CHECK FAILED: $*" >&2; }

free_port() {
  # Ask the kernel for a free port, then release it for the service to bind.
  perl -MIO::Socket::INET -e \
    'my $s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1",LocalPort=>0,Listen=>1) or die; print $s->sockport'
}
wait_http() { # url
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "service at $1 did not come up" >&2; return 1
}
NCPU=$(nproc)
LOAD_CPU=0
PROXY_CPU=$(( NCPU > 1 ? 1 : 0 ))
PIN_LOAD="taskset -c $LOAD_CPU"
PIN_PROXY="taskset -c $PROXY_CPU"
CLK_TCK=$(getconf CLK_TCK)

# CPU time (ticks) of a process, all threads.
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Busy and total ticks of one CPU.
cpu_ticks() { awk -v c="cpu$1" '$1==c{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t}' /proc/stat; }
rss_kb() { awk -v f="$2:" '$1==f{print $2}' "/proc/$1/status"; }

# ---- canned upstream ---------------------------------------------------------------------------
UP_PORT=$(free_port); PX_PORT=$(free_port); RGR_PORT=$(free_port); RGE_PORT=$(free_port)
RGI_PORT=$(free_port); REDIS_PORT=$(free_port)
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

# nginx's static module answers POST with 405; error_page 405 =200 turns that into the file.
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
    listen 127.0.0.1:$UP_PORT backlog=4096;
    root $WORK/www;
    location = /health { return 200 "ok"; }
    location = /stub { stub_status; }
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
    listen 127.0.0.1:$PX_PORT backlog=4096;
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
$PIN_PROXY nginx -c "$WORK/nginx-px/nginx.conf" -p "$WORK/nginx-px" & PX_MASTER=$!; PIDS+=($PX_MASTER)
wait_http "http://127.0.0.1:$UP_PORT/health"
wait_http "http://127.0.0.1:$PX_PORT/health"
PX_PID=$(pgrep -P "$PX_MASTER" | head -n 1) # the worker does the proxying
upstream_count() { curl -fsS "http://127.0.0.1:$UP_PORT/stub" | awk 'NR==3{print $3}'; }

# ---- redis + gateways ----------------------------------------------------------------------------
mkdir -p "$WORK/redis"
$PIN_LOAD redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$WORK/redis" >/dev/null & PIDS+=($!)
for _ in $(seq 1 200); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

write_cfg() { # name port backend level
  cat > "$WORK/$1.yaml" <<YAML
server: {host: 127.0.0.1, port: $2, worker_threads: 512}
storage:
  backend: $3
  data_dir: $WORK/$1-data
  redis: {url: "redis://127.0.0.1:$REDIS_PORT", key_prefix: "bench-$1:"}
security: {master_key: "bench-master-key-0123456789abcdef"}
logging: {level: $4, format: text}
plugins:
  directory: $BUILD/plugins
  enabled: [{name: claude}]
YAML
}
start_gateway() { # name port backend level -> pid in GW_PID, key in GW_KEY
  write_cfg "$1" "$2" "$3" "$4"
  "$RG" accounts add --config "$WORK/$1.yaml" --type claude-console --name canned \
    --base-url "http://127.0.0.1:$UP_PORT" --api-key sk-ant-bench-0000000000 >/dev/null
  GW_KEY=$("$RG" keys create --config "$WORK/$1.yaml" --name bench "${KEY_FLAGS[@]}" | tail -n 1)
  $PIN_PROXY "$RG" serve --config "$WORK/$1.yaml" > "$WORK/$1.out" 2> "$WORK/$1.err" &
  GW_PID=$!; PIDS+=($GW_PID)
  wait_http "http://127.0.0.1:$2/health"
  sleep 0.5 # let start-up allocations settle before reading the idle RSS
}
start_gateway rgr "$RGR_PORT" redis warn; RGR_PID=$GW_PID; RGR_KEY=$GW_KEY
RGR_IDLE=$(rss_kb "$RGR_PID" VmRSS)
start_gateway rge "$RGE_PORT" embedded warn; RGE_PID=$GW_PID; RGE_KEY=$GW_KEY
RGE_IDLE=$(rss_kb "$RGE_PID" VmRSS)
# Same as rge but with the access log on (logging.level: info), to price the access log.
start_gateway rgi "$RGI_PORT" embedded info; RGI_PID=$GW_PID; RGI_KEY=$GW_KEY

declare -A URL=( [direct]="http://127.0.0.1:$UP_PORT" [nginx]="http://127.0.0.1:$PX_PORT"
                 [relaygate-redis]="http://127.0.0.1:$RGR_PORT"
                 [relaygate-embedded]="http://127.0.0.1:$RGE_PORT"
                 [relaygate-embedded-info]="http://127.0.0.1:$RGI_PORT" )
declare -A KEY=( [direct]="none-0000000000" [nginx]="none-0000000000"
                 [relaygate-redis]="$RGR_KEY" [relaygate-embedded]="$RGE_KEY"
                 [relaygate-embedded-info]="$RGI_KEY" )
declare -A PID=( [direct]="" [nginx]="$PX_PID" [relaygate-redis]="$RGR_PID"
                 [relaygate-embedded]="$RGE_PID" [relaygate-embedded-info]="$RGI_PID" )
TARGETS=(direct nginx relaygate-redis relaygate-embedded)

JSON_BODY='{"model":"claude-sonnet-4-5-20250929","max_tokens":256,"messages":[{"role":"user","content":"Hello, benchmark"}]}'
SSE_BODY='{"model":"claude-sonnet-4-5-20250929","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Hello, benchmark"}]}'

# ---- correctness: every target returns the canned body, byte for byte ----------------------------
for t in "${TARGETS[@]}" relaygate-embedded-info; do
  for mode in json stream; do
    args=(-sS -o "$WORK/got" -w '%{http_code}' -X POST -H 'content-type: application/json'
          -H 'anthropic-version: 2023-06-01' -H "x-api-key: ${KEY[$t]}")
    if [ "$mode" = stream ]; then
      args+=(-H 'x-stainless-helper-method: stream' --data-binary "$SSE_BODY")
      want="$WORK/www/sse.txt"
    else
      args+=(--data-binary "$JSON_BODY")
      want="$WORK/www/json.txt"
    fi
    code=$(curl "${args[@]}" "${URL[$t]}/v1/messages")
    if [ "$code" != 200 ] || ! cmp -s "$WORK/got" "$want"; then
      fail "$t $mode: status $code, body $(cmp -s "$WORK/got" "$want" && echo same || echo differs)"
    fi
  done
done

if [ "$HOLD" = 1 ]; then
  # For profiling: keep everything running and print where it is; Ctrl-C stops it all.
  for t in "${!URL[@]}"; do echo "$t ${URL[$t]} key=${KEY[$t]} pid=${PID[$t]:-}"; done
  echo "wrk: $WORK (json body and script helpers); checks failed: ${#FAILURES[@]}"
  sleep infinity & PIDS+=($!); wait $! || true
  exit 0
fi

# ---- wrk -----------------------------------------------------------------------------------------
mkwrk() { # file key mode
  {
    echo 'wrk.method = "POST"'
    echo 'wrk.headers["content-type"] = "application/json"'
    echo 'wrk.headers["anthropic-version"] = "2023-06-01"'
    echo "wrk.headers[\"x-api-key\"] = \"$2\""
    if [ "$3" = stream ]; then
      echo 'wrk.headers["x-stainless-helper-method"] = "stream"'
      echo "wrk.body = '$SSE_BODY'"
    else
      echo "wrk.body = '$JSON_BODY'"
    fi
    # No response() hook: it makes wrk parse every response in Lua, and wrk shares CPU 0 with
    # the upstream. wrk counts status >= 400 in errors.status; the gateway's own counters and
    # the upstream's request counter cover the rest.
    cat <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %.3f %.3f %.3f %d %d %d %d %d\n", summary.requests,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
LUA
  } > "$1"
}

declare -A RES
run_cell() { # mode conns target
  local mode=$1 c=$2 t=$3 pid=${PID[$3]}
  mkwrk "$WORK/wrk.lua" "${KEY[$t]}" "$mode"
  $PIN_LOAD wrk -t1 -c"$c" -d"${WARMUP}s" -s "$WORK/wrk.lua" "${URL[$t]}/v1/messages" \
    >/dev/null 2>&1 || true
  local up0 pt0=0 pt1=0 c0 c1 line up1
  up0=$(upstream_count)
  [ -n "$pid" ] && pt0=$(proc_ticks "$pid")
  read -r -a c0 <<< "$(cpu_ticks "$LOAD_CPU") $(cpu_ticks "$PROXY_CPU")"
  line=$($PIN_LOAD wrk -t1 -c"$c" -d"${DURATION}s" --timeout 10s -s "$WORK/wrk.lua" \
           "${URL[$t]}/v1/messages" 2>&1 | awk '/^RESULT/{$1=""; print}')
  read -r -a c1 <<< "$(cpu_ticks "$LOAD_CPU") $(cpu_ticks "$PROXY_CPU")"
  [ -n "$pid" ] && pt1=$(proc_ticks "$pid")
  up1=$(upstream_count)
  if [ -z "$line" ]; then
    fail "$mode c=$c $t: wrk printed no result"
    line="0 0 0 0 0 1 0 0 0 0"
  fi
  local reqs rps p50 p99 pmax ec er ew es et
  read -r reqs rps p50 p99 pmax ec er ew es et <<< "$line"
  local errs=$(( ec + er + ew + es + et ))
  # -1: our own stub_status request is counted too.
  local relayed=$(( up1 - up0 - 1 ))
  [ "$errs" -ne 0 ] && fail "$mode c=$c $t: $errs errors (connect $ec read $er write $ew status $es timeout $et)"
  [ "$relayed" -lt "$reqs" ] && fail "$mode c=$c $t: upstream saw $relayed requests, wrk counted $reqs"
  [ "$reqs" -lt 100 ] && fail "$mode c=$c $t: only $reqs requests"
  local load_busy proxy_busy proc_cpu us_per_req
  load_busy=$(awk -v b="$(( c1[0] - c0[0] ))" -v t="$(( c1[1] - c0[1] ))" 'BEGIN{printf "%.0f", (t>0)?100*b/t:0}')
  proxy_busy=$(awk -v b="$(( c1[2] - c0[2] ))" -v t="$(( c1[3] - c0[3] ))" 'BEGIN{printf "%.0f", (t>0)?100*b/t:0}')
  if [ -n "$pid" ]; then
    proc_cpu=$(awk -v d="$(( pt1 - pt0 ))" -v hz="$CLK_TCK" -v s="$DURATION" 'BEGIN{printf "%.0f", 100*d/hz/s}')
    us_per_req=$(awk -v d="$(( pt1 - pt0 ))" -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN{printf "%.1f", (n>0)?1e6*d/hz/n:0}')
  else
    proc_cpu="-"; us_per_req="-"
  fi
  RES["$mode,$c,$t"]="$rps $p50 $p99 $pmax $errs $reqs $relayed $proc_cpu $us_per_req $load_busy $proxy_busy"
  echo "$mode c=$c $t: ${RES[$mode,$c,$t]}" >&2
}

# The gateways' own counters: answers on /v1/messages other than 200, and 499s (a client that
# closed mid-request: wrk does that to the requests in flight when a run ends, so they are
# expected and are not errors the client saw).
non200() { # port
  curl -fsS "http://127.0.0.1:$1/metrics" |
    awk '/^relaygate_requests_total\{/ && /route="\/v1\/messages"/ && !/status="200"/ && !/status="499"/{s+=$NF} END{print s+0}'
}
cut499() { # port
  curl -fsS "http://127.0.0.1:$1/metrics" |
    awk '/^relaygate_requests_total\{/ && /route="\/v1\/messages"/ && /status="499"/{s+=$NF} END{print s+0}'
}
ok200() { # port
  curl -fsS "http://127.0.0.1:$1/metrics" |
    awk '/^relaygate_requests_total\{/ && /route="\/v1\/messages"/ && /status="200"/{s+=$NF} END{print s+0}'
}

# The numbers are only meaningful on an otherwise idle machine: record how busy it was.
read -r b0 t0 <<< "$(cpu_ticks "$LOAD_CPU")"; read -r b1 t1 <<< "$(cpu_ticks "$PROXY_CPU")"
sleep 1
read -r b2 t2 <<< "$(cpu_ticks "$LOAD_CPU")"; read -r b3 t3 <<< "$(cpu_ticks "$PROXY_CPU")"
QUIET="CPU $LOAD_CPU $(( 100 * (b2 - b0) / (t2 - t0 > 0 ? t2 - t0 : 1) ))% busy, CPU $PROXY_CPU $(( 100 * (b3 - b1) / (t3 - t1 > 0 ? t3 - t1 : 1) ))% busy in the second before the cells (load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "idle check: $QUIET" >&2
START=$(date +%s)
for mode in json stream; do
  for c in "${CONNS[@]}"; do
    for t in "${TARGETS[@]}"; do
      run_cell "$mode" "$c" "$t"
    done
  done
done
# Access-log cost: the embedded gateway with logging.level info, non-stream.
INFO_CONNS=(1 64)
for c in "${INFO_CONNS[@]}"; do run_cell json "$c" relaygate-embedded-info; done
ELAPSED=$(( $(date +%s) - START ))

RGR_PEAK=$(rss_kb "$RGR_PID" VmHWM); RGE_PEAK=$(rss_kb "$RGE_PID" VmHWM)
RGR_NOW=$(rss_kb "$RGR_PID" VmRSS); RGE_NOW=$(rss_kb "$RGE_PID" VmRSS)
PX_PEAK=$(rss_kb "$PX_PID" VmHWM)
for p in "$RGR_PORT" "$RGE_PORT" "$RGI_PORT"; do
  n=$(non200 "$p")
  [ "$n" -ne 0 ] && fail "gateway on port $p answered $n non-200 responses on /v1/messages"
done
LOG_LINES=$(grep -c ' access rid=' "$WORK/rgi.err" || true)
WARN_LINES=$(cat "$WORK/rgr.err" "$WORK/rge.err" | grep -c . || true)

# ---- report --------------------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
f1() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a-b}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-"}'; }
{
  echo "Run: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)),"
  echo "relaygate $BUILD_TYPE build, ${DURATION}s per cell after a ${WARMUP}s warm-up, wrk -t1 (--timeout 10s),"
  echo "load generator + upstream (+ redis) on CPU $LOAD_CPU, proxy/gateway on CPU $PROXY_CPU. Cells took ${ELAPSED}s."
  echo "Idle check: $QUIET; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
  if [ ${#KEY_FLAGS[@]} -gt 0 ]; then
    echo "Gateway keys with limits that never bind (admission + settlement on every request): ${KEY_FLAGS[*]}."
  else
    echo "Gateway keys without limits (no admission step; usage is booked by the settlement)."
  fi
  echo
  echo "Columns: *proc CPU* = CPU time of the proxy/gateway process over the cell (100% = one core);"
  echo "*CPU µs/req* = that CPU time per response; *CPU0/CPU1 busy* = whole-CPU utilisation of the"
  echo "load side and the proxy side; *relayed* = requests the canned upstream counted in the cell"
  echo "(>= responses, or the check fails); *added* = latency over the direct (no proxy) row."
  for mode in json stream; do
    echo
    if [ "$mode" = json ]; then echo "### Non-stream (JSON, $(wc -c < "$WORK/www/json.txt") bytes)"; else
      echo "### Stream (SSE, $(wc -c < "$WORK/www/sse.txt") bytes, 26 events)"; fi
    echo
    echo "| conns | target | req/s | p50 ms | p99 ms | max ms | added p50 | added p99 | errors | responses | relayed | proc CPU | CPU µs/req | CPU0 busy | CPU1 busy | req/s vs nginx |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for c in "${CONNS[@]}"; do
      read -r _ dp50 dp99 _ <<< "${RES[$mode,$c,direct]}"
      read -r nrps _ <<< "${RES[$mode,$c,nginx]}"
      rows=("${TARGETS[@]}")
      if [ "$mode" = json ] && [[ " ${INFO_CONNS[*]} " == *" $c "* ]]; then rows+=(relaygate-embedded-info); fi
      for t in "${rows[@]}"; do
        read -r rps p50 p99 pmax err reqs relayed pcpu usr lb pb <<< "${RES[$mode,$c,$t]}"
        if [ "$t" = direct ]; then a50="-"; a99="-"; else a50=$(f1 "$p50" "$dp50"); a99=$(f1 "$p99" "$dp99"); fi
        [ "$pcpu" != "-" ] && pcpu="$pcpu%"
        echo "| $c | $t | $rps | $p50 | $p99 | $pmax | $a50 | $a99 | $err | $reqs | $relayed | $pcpu | $usr | $lb% | $pb% | $(ratio "$rps" "$nrps") |"
      done
    done
  done
  echo
  echo "### relaygate / nginx"
  echo
  echo "| mode | conns | redis: req/s ratio | embedded: req/s ratio | redis: CPU/req ratio | embedded: CPU/req ratio |"
  echo "|---|---:|---:|---:|---:|---:|"
  for mode in json stream; do
    for c in "${CONNS[@]}"; do
      read -r nrps _ _ _ _ _ _ _ nus _ <<< "${RES[$mode,$c,nginx]}"
      read -r rrps _ _ _ _ _ _ _ rus _ <<< "${RES[$mode,$c,relaygate-redis]}"
      read -r erps _ _ _ _ _ _ _ eus _ <<< "${RES[$mode,$c,relaygate-embedded]}"
      echo "| $mode | $c | $(ratio "$rrps" "$nrps") | $(ratio "$erps" "$nrps") | $(ratio "$rus" "$nus") | $(ratio "$eus" "$nus") |"
    done
  done
  echo
  echo "### Memory"
  echo
  echo "| process | RSS right after start | RSS at the end | peak RSS (VmHWM) |"
  echo "|---|---:|---:|---:|"
  echo "| relaygate-redis | $(( RGR_IDLE / 1024 )) MB ($RGR_IDLE kB) | $(( RGR_NOW / 1024 )) MB | $(( RGR_PEAK / 1024 )) MB ($RGR_PEAK kB) |"
  echo "| relaygate-embedded | $(( RGE_IDLE / 1024 )) MB ($RGE_IDLE kB) | $(( RGE_NOW / 1024 )) MB | $(( RGE_PEAK / 1024 )) MB ($RGE_PEAK kB) |"
  echo "| nginx proxy worker | - | - | $(( PX_PEAK / 1024 )) MB ($PX_PEAK kB) |"
  echo
  echo "Gateway 200s on /v1/messages: redis $(ok200 "$RGR_PORT"), embedded $(ok200 "$RGE_PORT"), embedded-info $(ok200 "$RGI_PORT");"
  echo "499s (requests in flight when a wrk run stopped): redis $(cut499 "$RGR_PORT"), embedded $(cut499 "$RGE_PORT"), embedded-info $(cut499 "$RGI_PORT"); other non-200: none, or the check fails; access-log lines written by the info gateway: $LOG_LINES; stderr lines of the warn-level gateways: $WARN_LINES."
  echo
  echo "### Targets"
  echo
  for b in redis embedded; do
    read -r rrps _ <<< "${RES[json,64,relaygate-$b]:-0}"
    read -r nrps _ <<< "${RES[json,64,nginx]:-0}"
    r=$(ratio "$rrps" "$nrps")
    echo "- relaygate-$b >= 0.5x nginx req/s at 64 connections (non-stream): $r -> $(awk -v r="$r" 'BEGIN{print ((r>=0.5)?"met":"NOT met")}')"
    read -r _ p50 p99 _ <<< "${RES[json,1,relaygate-$b]:-0 0 0}"
    read -r _ dp50 dp99 _ <<< "${RES[json,1,direct]:-0 0 0}"
    a50=$(f1 "$p50" "$dp50"); a99=$(f1 "$p99" "$dp99")
    echo "- relaygate-$b added latency at 1 connection (non-stream): p50 $a50 ms (<= 0.3: $(awk -v a="$a50" 'BEGIN{print ((a<=0.3)?"met":"NOT met")}')), p99 $a99 ms (<= 1: $(awk -v a="$a99" 'BEGIN{print ((a<=1)?"met":"NOT met")}'))"
  done
  echo "- idle RSS <= 20 MB: redis $(( RGR_IDLE / 1024 )) MB, embedded $(( RGE_IDLE / 1024 )) MB -> $( [ "$RGR_IDLE" -le 20480 ] && [ "$RGE_IDLE" -le 20480 ] && echo met || echo "NOT met")"
  echo "- zero errors and every check passed: $( [ "${#FAILURES[@]}" -eq 0 ] && echo met || echo "NOT met (${#FAILURES[@]} failed checks)")"
  for f in "${FAILURES[@]}"; do echo "  - $f"; done
} > "$OUT"
cat "$OUT"
[ "${#FAILURES[@]}" -eq 0 ]
