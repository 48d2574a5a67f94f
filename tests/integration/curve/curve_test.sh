#!/usr/bin/env bash
# integration.curve: `rayfleetctl up --sim --bus-ipc-auth curve` runs the bus with CurveZMQ and an
# allow-list (issue 17; up's default on ipc:// is peer uids, tested by integration.busipc; tcp://
# always uses CURVE, as compose and the chart run it). Checks: the generated keys and their modes; every service allowed on the
# bus; a plain-ZMTP forger and a CURVE forger with an unknown key publish an ObjectChanged that an
# allowed subscriber never sees, while an allowed publisher's event arrives; unknown and plain
# subscribers receive nothing; the forwarder counts (/metrics) and logs the refusals; a half key
# setup is refused at start; --bus-insecure runs the bus open, with a warning.
# Usage: curve_test.sh PATH/TO/rayfleetctl PATH/TO/curve_probe
set -uo pipefail
ctl=${1:?usage: curve_test.sh PATH/TO/rayfleetctl PATH/TO/curve_probe}
probe=${2:?usage: curve_test.sh PATH/TO/rayfleetctl PATH/TO/curve_probe}
here=$(cd "$(dirname "$0")" && pwd)
bin=$(dirname "$ctl")
# shellcheck source=../cli/testlib.sh
source "$here/../cli/testlib.sh"
tl_cell curve "$ctl"
keys="$state/keys"
# The probes and the services started by hand below take CURVE on ipc:// too (busopt.h).
export RAYFLEET_BUS_IPC_AUTH=curve

mode() { stat -c %a "$1"; }
metric() { # metric PORT NAME_AND_LABELS: prints the value, 0 when absent
    curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'
}
bus_port() { grep -o 'bus ready (pid [0-9]*, /readyz 200, health port [0-9]*' "$1" | grep -o '[0-9]*$'; }

if ! "$ctl" up --sim --detach --bus-ipc-auth curve --state-dir "$state" --timeout 60s >"$tmp/kc" \
    2>"$tmp/up.err"; then
    bad "up --sim --detach --bus-ipc-auth curve"; cat "$tmp/up.err"; tl_summary; exit 1
fi
ok "up --sim --detach --bus-ipc-auth curve"

# --- the keys: a 0700 dir, 0600 pairs and allow-list, one pair per client service ------------
[[ $(mode "$keys") == 700 ]] && ok "keys dir is 0700" || bad "keys dir is 0700 ($(mode "$keys"))"
bad_modes=""
for f in bus.key watcher.key scheduler.key submitter.key serve-upgrade.key allow; do
    [[ -f "$keys/$f" && $(mode "$keys/$f") == 600 ]] || bad_modes+=" $f"
done
[[ -z $bad_modes ]] && ok "key pairs and allow-list are 0600" || bad "0600 files:$bad_modes"
[[ $(grep -cvE '^#|^$' "$keys/allow") -eq 4 ]] && ok "allow-list holds the 4 client keys" ||
    bad "allow-list holds the 4 client keys"
if grep -rqs -- 'secret-key' "$state/logs" || grep -qF "$(grep secret-key "$keys/bus.key" | cut -d'"' -f2)" "$state"/logs/*.log "$tmp/up.err"; then
    bad "no secret key in the logs"
else
    ok "no secret key in the logs"
fi
ps -eo args | grep -F "$state" | grep -q 'secret' && bad "no key material in argv" || ok "no key material in argv"
has "bus log: curve on" "$(grep 'forwarder ready' "$state/logs/bus.log")" '"curve":"on"'

port=$(bus_port "$tmp/up.err")
[[ -n $port ]] && ok "bus health port found ($port)" || { bad "bus health port"; tl_summary; exit 1; }
allowed=$(metric "$port" 'rayfleet_bus_auth_total{result="allowed"}')
[[ $allowed -ge 4 ]] && ok "the 4 services joined over CURVE (allowed $allowed)" ||
    bad "the 4 services joined over CURVE (allowed $allowed)"
[[ $(metric "$port" 'rayfleet_bus_auth_total{result="refused"}') -eq 0 ]] &&
    ok "nothing refused yet" || bad "nothing refused yet"

# --- forgers and listeners ----------------------------------------------------------------------
front="ipc://$state/bus-in"
back="ipc://$state/bus-out"
"$probe" --mode keygen --out "$tmp/stranger.key" || bad "keygen"
srv=(--bus.curve-server-key-file "$keys/bus.pub")
"$probe" --mode sub --bus.endpoint "$back" "${srv[@]}" --bus.curve-key-file "$keys/submitter.key" \
    --duration 5s >"$tmp/good.out" 2>"$tmp/good.err" &
good=$!
"$probe" --mode sub --bus.endpoint "$back" "${srv[@]}" --bus.curve-key-file "$tmp/stranger.key" \
    --duration 5s >"$tmp/stranger-sub.out" 2>&1 &
ssub=$!
"$probe" --mode sub --bus.endpoint "$back" --duration 5s >"$tmp/plain-sub.out" 2>&1 &
psub=$!
sleep 1 # the listeners subscribe
"$probe" --mode pub --bus.endpoint "$front" --event-id 111111 --duration 2s \
    >"$tmp/plain-pub.out" 2>&1 &
ppub=$!
"$probe" --mode pub --bus.endpoint "$front" "${srv[@]}" --bus.curve-key-file "$tmp/stranger.key" \
    --event-id 222222 --duration 2s >"$tmp/stranger-pub.out" 2>&1 &
spub=$!
"$probe" --mode pub --bus.endpoint "$front" "${srv[@]}" --bus.curve-key-file "$keys/scheduler.key" \
    --event-id 333333 --duration 2s >"$tmp/good-pub.out" 2>&1
wait $good $ssub $psub $ppub $spub
g=$(cat "$tmp/good.out")
has "allowed subscriber hears the set (bus heartbeat)" "$g" '^peer bus$'
has "allowed publisher's event gets through" "$g" '^event 333333 curve-probe$'
if grep -qE '^event (111111|222222) ' <<<"$g"; then
    bad "forged events (plain ZMTP, unknown CURVE key) never reach a subscriber"
    sed 's/^/    | /' <<<"$g"
else
    ok "forged events (plain ZMTP, unknown CURVE key) never reach a subscriber"
fi
for who in stranger-sub plain-sub; do
    out=$(cat "$tmp/$who.out")
    if grep -q '^received 0$' <<<"$out" && ! grep -q '^peer ' <<<"$out"; then
        ok "$who receives nothing"
    else
        bad "$who receives nothing"; sed 's/^/    | /' <<<"$out"
    fi
done
refused=$(metric "$port" 'rayfleet_bus_auth_total{result="refused"}')
hsfail=$(metric "$port" 'rayfleet_bus_auth_total{result="handshake_failed"}')
[[ $refused -ge 2 ]] && ok "forwarder counts unknown keys (refused $refused)" ||
    bad "forwarder counts unknown keys (refused $refused)"
[[ $hsfail -ge 2 ]] && ok "forwarder counts plain ZMTP peers (handshake_failed $hsfail)" ||
    bad "forwarder counts plain ZMTP peers (handshake_failed $hsfail)"
stranger=$(grep public-key "$tmp/stranger.key" | cut -d'"' -f2)
has "forwarder logs the refused key" "$(grep 'not in the allow-list' "$state/logs/bus.log")" \
    "\"key\":\"$(sed 's/[][\\.*^$+?(){}|/]/\\&/g' <<<"$stranger")\""
has "forwarder logs the plain peer" "$(cat "$state/logs/bus.log")" 'CURVE handshake failed'
"$ctl" audit --state-dir "$state" --output json --limit 100000 >"$tmp/audit.json" 2>/dev/null
if grep -qE '"cause_event_id": *(111111|222222)' "$tmp/audit.json"; then
    bad "no audit row caused by a forged event"
else
    ok "no audit row caused by a forged event"
fi

# --- half a key setup is refused at start ---------------------------------------------------------
expect_code "probe: server key without a pair is refused" 2 \
    "$probe" --mode sub --bus.endpoint "$back" "${srv[@]}"
out=$("$bin/rayfleet-watcher" --state-dir "$tmp/w" --health.port 0 --bus.endpoint "$front" \
    "${srv[@]}" 2>&1 </dev/null)
code=$?
[[ $code -eq 2 ]] && has "watcher: server key without a pair exits 2, naming the option" "$out" \
    'bus.curve-key-file is not' || bad "watcher: server key without a pair exits 2 (got $code)"
out=$("$bin/rayfleet-bus" --bus.frontend "ipc://$tmp/x-in" --bus.backend "ipc://$tmp/x-out" \
    --health.port 0 --bus.curve-key-file "$keys/bus.key" 2>&1 </dev/null)
code=$?
[[ $code -eq 2 ]] && has "bus: key pair without an allow-list exits 2" "$out" \
    'bus.curve-allow-file is not' || bad "bus: key pair without an allow-list exits 2 (got $code)"
printf '# bad\n%s\nshort\n' "$stranger" >"$tmp/bad-allow"
out=$("$bin/rayfleet-bus" --bus.frontend "ipc://$tmp/x-in" --bus.backend "ipc://$tmp/x-out" \
    --health.port 0 --bus.curve-key-file "$keys/bus.key" --bus.curve-allow-file "$tmp/bad-allow" 2>&1 </dev/null)
code=$?
[[ $code -eq 2 ]] && has "bus: a bad allow-list line is named file:line" "$out" \
    "bad-allow:3: must be one public key of exactly 40 Z85 characters" ||
    bad "bus: a bad allow-list exits 2 (got $code)"

# --- a restart keeps the keys; --bus-insecure runs the bus open, with a warning -------------------
before=$(cat "$keys/bus.pub")
"$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1
if "$ctl" up --sim --detach --bus-insecure --state-dir "$state" --timeout 60s >/dev/null 2>"$tmp/up2.err"; then
    ok "up --bus-insecure"
    has "up --bus-insecure warns" "$(cat "$tmp/up2.err")" 'warning: --bus-insecure'
    has "bus log: curve off, with a warning" "$(cat "$state/logs/bus.log")" '"curve":"off"' \
        'CURVE is off'
    out=$("$probe" --mode sub --bus.endpoint "$back" --duration 2s 2>&1)
    has "insecure bus: a plain subscriber hears it" "$out" '^peer bus$'
    "$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1
else
    bad "up --bus-insecure"; cat "$tmp/up2.err"
fi
[[ $(cat "$keys/bus.pub") == "$before" ]] && ok "keys kept across restarts" || bad "keys kept across restarts"
tl_summary
