#!/usr/bin/env bash
# SIP load bench: builds and starts `hotline serve` (release) on 127.0.0.1
# with the echo number, drives it with sipp, and prints the figures that
# benches/RESULTS.md records. Everything stays on loopback.
#
#   benches/sip_load.sh [cps|media|all]        (default: all)
#
# cps   : call-rate steps (RATES, STEP_S seconds each). Each call is a full
#         INVITE -> 200 -> ACK -> hold HOLD_MS -> BYE flow to sip:echo.
#         Reports successes/failures, the achieved rate, INVITE->200 setup
#         percentiles (sipp -trace_rtt) and Hotline's CPU.
# media : MEDIA_CALLS concurrent calls, opened at MEDIA_RATE calls/s and held
#         MEDIA_HOLD_S, each playing a PCMU RTP stream (play_pcap_audio) that
#         Hotline echoes. A tcpdump capture on lo of Hotline's RTP port range
#         gives both directions' packet counts and Hotline's outgoing
#         per-stream spacing; Hotline's "call ended" log lines give what it
#         sent and received; /proc/<pid>/stat gives its CPU over the window
#         in which every call is up.
#
# PIN=1 pins Hotline to CPU 0 and the load generator (sipp and tcpdump) to
# CPU 1 with taskset, so sipp cannot take Hotline's core when both are busy:
# closer to production, where the peers are other machines. The default
# (PIN=0) leaves placement to the scheduler: the shared-machine case.
#
# Needs root (play_pcap_audio uses a raw socket; tcpdump), sipp, tcpdump and
# python3 (scripts/deps installs them). Override any of the variables below
# from the environment. Output files go to OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-all}
case "$MODE" in cps | media | all) ;; *)
    echo "usage: $0 [cps|media|all]" >&2
    exit 2
    ;;
esac

# The bench only ever talks to this address.
IP=127.0.0.1
# Ports are kept clear of the test suite's peers (20000-32767), of the
# default RTP range (10000-19999, used by benches/rtp_load.rs) and of the
# kernel's ephemeral range (32768+), so the bench can run next to them.
SIP_PORT=${SIP_PORT:-5980}
SIPP_PORT=${SIPP_PORT:-5981}
RTP_MIN=${RTP_MIN:-6000}
RTP_MAX=${RTP_MAX:-7999}
# sipp's -mp: [auto_media_port] is MP + 4*(call-1), so MEDIA_CALLS calls use
# MP .. MP + 4*(MEDIA_CALLS-1), below 10000 for up to 500 calls.
SIPP_MP=${SIPP_MP:-8000}
RATES=${RATES:-"100 300 500 700"}
STEP_S=${STEP_S:-15}
HOLD_MS=${HOLD_MS:-100}
MEDIA_CALLS=${MEDIA_CALLS:-500}
MEDIA_RATE=${MEDIA_RATE:-100}
MEDIA_HOLD_S=${MEDIA_HOLD_S:-20}
OUT=${OUT:-/tmp/hotline-sip-load}
PIN=${PIN:-0}
PY=${PY:-python3}
HELPER=$ROOT/benches/sip_load.py
# Command prefixes for PIN=1 (empty otherwise). taskset execs the command,
# so the process ids the script reads stay those of Hotline and sipp.
PIN_HOTLINE=()
PIN_LOAD=()
if [ "$PIN" = 1 ]; then
    PIN_HOTLINE=(taskset -c 0)
    PIN_LOAD=(taskset -c 1)
fi

if ((MEDIA_CALLS > (RTP_MAX - RTP_MIN + 1) / 2)); then
    echo "MEDIA_CALLS=$MEDIA_CALLS exceeds the RTP range $RTP_MIN-$RTP_MAX" >&2
    exit 2
fi
for c in sipp tcpdump "$PY" cargo; do
    command -v "$c" >/dev/null || {
        echo "$c not found (scripts/deps installs the packages)" >&2
        exit 1
    }
done
[ "$(id -u)" -eq 0 ] || {
    echo "run as root: sipp play_pcap_audio and tcpdump need raw sockets" >&2
    exit 1
}
for p in $SIP_PORT $SIPP_PORT; do
    if ss -Hlun "sport = :$p" | grep -q .; then
        echo "UDP port $p is in use; set SIP_PORT/SIPP_PORT" >&2
        exit 1
    fi
done

rm -rf "$OUT"
mkdir -p "$OUT/data"
echo "== building hotline (release)"
cargo build --release --bin hotline 2>&1 | tail -1
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET_DIR/release/hotline

cat >"$OUT/hotline.toml" <<EOF
data_dir = "$OUT/data"
[log]
level = "info"
format = "json"
[http]
listen = "$IP:0"
[sip]
listen = ["udp:$IP:$SIP_PORT"]
max_calls = 4000
drain_secs = 2
[rtp]
port_min = $RTP_MIN
port_max = $RTP_MAX
bind_ip = "$IP"
EOF

HOTLINE_PID=
CAPTURE_PID=
cleanup() {
    # Stops only what this script started, by process id.
    if [ -n "$CAPTURE_PID" ] && kill -0 "$CAPTURE_PID" 2>/dev/null; then
        kill -INT "$CAPTURE_PID" 2>/dev/null || true
    fi
    if [ -n "$HOTLINE_PID" ] && kill -0 "$HOTLINE_PID" 2>/dev/null; then
        kill -TERM "$HOTLINE_PID" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$HOTLINE_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$HOTLINE_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# Two sockets per call (RTP and RTCP) plus sipp's: raise the descriptor limit
# as far as the hard limit allows.
ulimit -n "$(ulimit -Hn)"

${PIN_HOTLINE[@]+"${PIN_HOTLINE[@]}"} "$BIN" --config "$OUT/hotline.toml" serve >"$OUT/hotline.log" 2>&1 &
HOTLINE_PID=$!
for _ in $(seq 1 100); do
    grep -q '"hotline listening"' "$OUT/hotline.log" 2>/dev/null && break
    kill -0 "$HOTLINE_PID" 2>/dev/null || {
        cat "$OUT/hotline.log" >&2
        exit 1
    }
    sleep 0.1
done
grep -q '"hotline listening"' "$OUT/hotline.log" || {
    echo "hotline did not start in 10 s" >&2
    exit 1
}
echo "== hotline pid $HOTLINE_PID, SIP udp $IP:$SIP_PORT, RTP $RTP_MIN-$RTP_MAX, log $OUT/hotline.log"
echo "== machine: $(nproc) cores; PIN=$PIN; uptime:$(uptime)"

# utime + stime of a process, in clock ticks (proc(5) fields 14 and 15; the
# command name in field 2 has no spaces here).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
now() { date +%s.%N; }
# Percent of one core between two tick readings over a wall-clock interval.
core_pct() { "$PY" -c "print(f'{100 * ($2 - $1) / $HZ / ($4 - $3):.1f}')" "$@"; }
rss_mb() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
# Waits (at most 45 s) until Hotline holds no media sockets, so one phase's
# calls do not load the next.
wait_idle() {
    for _ in $(seq 1 450); do
        [ "$(ss -Huan "sport >= :$RTP_MIN and sport <= :$RTP_MAX" | wc -l)" -eq 0 ] && return 0
        sleep 0.1
    done
    echo "   warning: Hotline still holds media sockets after 45 s" >&2
}
value() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

# The final row of a sipp -trace_stat CSV, by column name.
stat_col() {
    "$PY" - "$1" "$2" <<'PYEOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter=";"))
print((rows[-1].get(sys.argv[2]) or "").strip() if rows else "")
PYEOF
}

# Starts tcpdump on lo (bounded wait until it listens); sets CAPTURE_PID.
# $1 = pcap file, $2 = snap length, $3 = filter.
start_capture() {
    ${PIN_LOAD[@]+"${PIN_LOAD[@]}"} tcpdump -i lo -n -s "$2" -B 65536 -w "$1" "$3" 2>"$1.err" &
    CAPTURE_PID=$!
    for _ in $(seq 1 50); do
        grep -q "listening on" "$1.err" && break
        sleep 0.1
    done
}
stop_capture() {
    kill -INT "$CAPTURE_PID"
    wait "$CAPTURE_PID" 2>/dev/null || true
    CAPTURE_PID=
}

run_cps() {
    echo
    echo "== call-rate steps: ${RATES} calls/s, ${STEP_S} s each, hold ${HOLD_MS} ms"
    echo "   (sipp: setup times as sipp saw them, 1 ms resolution; wire: INVITE -> 200 on lo)"
    printf '%6s %7s %6s %6s %7s %8s %16s %16s %9s %9s %7s\n' \
        rate calls ok failed retrans achieved sipp_p50/p99 wire_p50/p99 max_ms hotline% rss_MB
    for rate in $RATES; do
        local dir=$OUT/cps_$rate calls=$((rate * STEP_S))
        mkdir -p "$dir"
        local log_from
        log_from=$(wc -l <"$OUT/hotline.log")
        local c0 t0 c1 t1 rc=0
        # Whole SIP messages: the setup time is paired by Call-ID.
        start_capture "$dir/sip.pcap" 2048 "udp port $SIP_PORT"
        c0=$(cpu_ticks "$HOTLINE_PID")
        t0=$(now)
        # -l caps concurrent calls at two seconds' worth: a server that falls
        # behind shows as a lower achieved rate rather than unbounded load.
        # -timeout bounds the run; `timeout` is the backstop.
        (cd "$dir" && timeout $((STEP_S + 60)) ${PIN_LOAD[@]+"${PIN_LOAD[@]}"} sipp -sf "$ROOT/benches/sipp/uac_call.xml" \
            "$IP:$SIP_PORT" -s echo -i "$IP" -p "$SIPP_PORT" -mi "$IP" -mp "$SIPP_MP" \
            -m "$calls" -r "$rate" -l $((rate * 2)) -d "$HOLD_MS" \
            -timeout $((STEP_S + 45))s -timeout_error -nostdin \
            -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1 -trace_err -trace_screen \
            >sipp.out 2>&1) || rc=$?
        c1=$(cpu_ticks "$HOTLINE_PID")
        t1=$(now)
        stop_capture
        "$PY" "$HELPER" rtt "$dir"/*_rtt.csv >"$dir/rtt.txt"
        "$PY" "$HELPER" sipsetup "$dir/sip.pcap" "$SIP_PORT" >"$dir/wire.txt"
        # Let the last calls' teardown reach the log.
        sleep 1
        "$PY" "$HELPER" log "$OUT/hotline.log" "$log_from" >"$dir/log.txt"
        local ok failed retrans
        ok=$(stat_col "$dir/stat.csv" "SuccessfulCall(C)")
        failed=$(stat_col "$dir/stat.csv" "FailedCall(C)")
        retrans=$(stat_col "$dir/stat.csv" "Retransmissions(C)")
        printf '%6s %7s %6s %6s %7s %8s %16s %16s %9s %9s %7s\n' \
            "$rate" "$calls" "$ok" "$failed" "$retrans" "$(value setup_rate "$dir/rtt.txt")" \
            "$(value setup_p50 "$dir/rtt.txt")/$(value setup_p99 "$dir/rtt.txt")" \
            "$(value wire_setup_p50 "$dir/wire.txt")/$(value wire_setup_p99 "$dir/wire.txt")" \
            "$(value setup_max "$dir/rtt.txt")" "$(core_pct "$c0" "$c1" "$t0" "$t1")" \
            "$(rss_mb "$HOTLINE_PID")"
        if [ "$rc" -ne 0 ] || [ "$(value log_errors "$dir/log.txt")" != 0 ]; then
            echo "   sipp exit $rc; hotline log: $(tr '\n' ' ' <"$dir/log.txt")"
            ls "$dir"/*errors.log >/dev/null 2>&1 &&
                echo "   sipp errors (first 3):" && grep -m3 -h . "$dir"/*errors.log | cut -c1-200
        fi
        kill -0 "$HOTLINE_PID" 2>/dev/null || {
            echo "hotline died; see $OUT/hotline.log" >&2
            exit 1
        }
        wait_idle
    done
}

run_media() {
    local dir=$OUT/media
    mkdir -p "$dir"
    echo
    echo "== media: $MEDIA_CALLS calls at $MEDIA_RATE/s, held ${MEDIA_HOLD_S} s, PCMU both ways"
    # The stream ends half a second before the BYE, so every packet of it is
    # sent while the call is up.
    local pkts
    pkts=$("$PY" "$HELPER" pcap "$dir/stream.pcap" "$(awk -v h="$MEDIA_HOLD_S" 'BEGIN{print h - 0.5}')" |
        awk '{print $2}')
    sed "s#@PCAP@#$dir/stream.pcap#" "$ROOT/benches/sipp/uac_media.xml" >"$dir/uac_media.xml"
    local log_from
    log_from=$(wc -l <"$OUT/hotline.log")

    # Headers only (64 bytes reach the RTP header), a large kernel buffer,
    # Hotline's range only: the capture must keep up with both directions.
    start_capture "$dir/capture.pcap" 64 "udp and portrange $RTP_MIN-$RTP_MAX"

    local start ramp_s w0 w1
    start=$(now)
    ramp_s=$(((MEDIA_CALLS + MEDIA_RATE - 1) / MEDIA_RATE))
    # Every call is up from the end of the ramp until the first call's BYE.
    w0=$(awk -v s="$start" -v r="$ramp_s" 'BEGIN{printf "%.3f", s + r + 1.5}')
    w1=$(awk -v s="$start" -v h="$MEDIA_HOLD_S" 'BEGIN{printf "%.3f", s + h - 1}')
    (cd "$dir" && timeout $((MEDIA_HOLD_S + ramp_s + 60)) ${PIN_LOAD[@]+"${PIN_LOAD[@]}"} sipp -sf "$dir/uac_media.xml" \
        "$IP:$SIP_PORT" -s echo -i "$IP" -p "$SIPP_PORT" -mi "$IP" -mp "$SIPP_MP" \
        -m "$MEDIA_CALLS" -r "$MEDIA_RATE" -l "$MEDIA_CALLS" -d $((MEDIA_HOLD_S * 1000)) \
        -timeout $((MEDIA_HOLD_S + ramp_s + 45))s -timeout_error -nostdin \
        -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1 -trace_err -trace_screen \
        >sipp.out 2>&1) &
    local sipp_sub=$!
    sleep "$(awk -v w="$w0" -v n="$(now)" 'BEGIN{d = w - n; print (d > 0 ? d : 0)}')"
    local sipp_pid c0 s0 d0 t0 c1 s1 d1 t1
    sipp_pid=$(pgrep -n -P "$(pgrep -n -P "$sipp_sub" timeout || echo 0)" sipp ||
        pgrep -n -P "$sipp_sub" sipp || echo "")
    c0=$(cpu_ticks "$HOTLINE_PID")
    d0=$(cpu_ticks "$CAPTURE_PID")
    s0=$([ -n "$sipp_pid" ] && cpu_ticks "$sipp_pid" || echo 0)
    t0=$(now)
    local live
    live=$(ss -Huan "sport >= :$RTP_MIN and sport <= :$RTP_MAX" | wc -l)
    sleep "$(awk -v w="$w1" -v n="$(now)" 'BEGIN{d = w - n; print (d > 0 ? d : 0)}')"
    c1=$(cpu_ticks "$HOTLINE_PID")
    d1=$(cpu_ticks "$CAPTURE_PID")
    s1=$([ -n "$sipp_pid" ] && cpu_ticks "$sipp_pid" || echo 0)
    t1=$(now)
    local rc=0
    wait "$sipp_sub" || rc=$?
    sleep 2
    stop_capture
    "$PY" "$HELPER" log "$OUT/hotline.log" "$log_from" >"$dir/log.txt"
    "$PY" "$HELPER" rtt "$dir"/*_rtt.csv >"$dir/rtt.txt"
    "$PY" "$HELPER" capture "$dir/capture.pcap" "$RTP_MIN" "$RTP_MAX" "$t0" "$t1" >"$dir/capture.txt"

    local hotline_pct per_call sent recv cap_in cap_out expected
    hotline_pct=$(core_pct "$c0" "$c1" "$t0" "$t1")
    per_call=$("$PY" -c "print(f'{$hotline_pct / $MEDIA_CALLS:.3f}')")
    sent=$(value hotline_rtp_sent "$dir/log.txt")
    recv=$(value hotline_rtp_received "$dir/log.txt")
    cap_in=$(value capture_to_hotline "$dir/capture.txt")
    cap_out=$(value capture_from_hotline "$dir/capture.txt")
    expected=$((pkts * MEDIA_CALLS))
    loss() { "$PY" -c "print(f'{100 * (1 - $2 / $1):.3f}' if $1 else 'n/a')"; }
    echo "sipp: exit $rc, ok $(stat_col "$dir/stat.csv" "SuccessfulCall(C)"), failed $(stat_col "$dir/stat.csv" "FailedCall(C)"), retransmissions $(stat_col "$dir/stat.csv" "Retransmissions(C)")"
    echo "setup INVITE->200 ms: p50 $(value setup_p50 "$dir/rtt.txt") p99 $(value setup_p99 "$dir/rtt.txt") max $(value setup_max "$dir/rtt.txt")"
    echo "hotline log: $(tr '\n' ' ' <"$dir/log.txt")"
    echo "UDP sockets open in Hotline's RTP range at window start: $live; hotline RSS $(rss_mb "$HOTLINE_PID") MB"
    echo "steady window: $("$PY" -c "print(f'{$t1 - $t0:.1f}')") s"
    echo "CPU over the window: hotline ${hotline_pct}% of a core = ${per_call}% per call;" \
        "sipp $(core_pct "$s0" "$s1" "$t0" "$t1")%; tcpdump $(core_pct "$d0" "$d1" "$t0" "$t1")%"
    echo "peer -> hotline: sipp stream $expected packets ($pkts x $MEDIA_CALLS), on the wire $cap_in (sipp shortfall $(loss "$expected" "$cap_in")%), hotline received $recv (loss $(loss "$cap_in" "$recv")%)"
    echo "hotline -> peer: hotline sent $sent, on the wire $cap_out (loss $(loss "$sent" "$cap_out")%)"
    echo "capture: $(grep -h 'dropped by kernel' "$dir/capture.pcap.err" || echo '?')"
    echo "outgoing spacing in the window, ms: $(tr '\n' ' ' <"$dir/capture.txt")"
}

case "$MODE" in
cps) run_cps ;;
media) run_media ;;
all)
    run_cps
    run_media
    ;;
esac
echo
echo "== uptime after:$(uptime)"
