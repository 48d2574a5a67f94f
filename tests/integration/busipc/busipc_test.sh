#!/usr/bin/env bash
# integration.busipc: the bus of `rayfleetctl up` admits ipc:// peers by their uid (issue 17,
# --bus-ipc-auth peercred, the default; common/bus.h "Local peers"). Checks: no CURVE keys are
# made; the bus logs peercred on both sockets and every service joins (/metrics); a same-uid
# process publishes and subscribes (the envelope path unchanged: the event arrives decoded); a
# process of another uid (nobody, via setpriv, when root) reaches nothing through STATE's 0700
# directory; on abstract ipc:// sockets (no file mode, so only the uid check stands) another uid
# is refused by ZAP, counted in rayfleet_bus_auth_total{result="refused"} and
# rayfleet_bus_auth_peercred_total, and logged once per uid per second; --bus.ipc-allow-uids
# without our uid refuses us; a tcp:// frontend of the same bus keeps CURVE (plain refused, a
# listed key allowed) while its ipc:// backend checks uids.
# Usage: busipc_test.sh PATH/TO/rayfleetctl PATH/TO/curve_probe
set -uo pipefail
ctl=${1:?usage: busipc_test.sh PATH/TO/rayfleetctl PATH/TO/curve_probe}
probe=${2:?usage: busipc_test.sh PATH/TO/rayfleetctl PATH/TO/curve_probe}
here=$(cd "$(dirname "$0")" && pwd)
bin=$(dirname "$ctl")
# shellcheck source=../cli/testlib.sh
source "$here/../cli/testlib.sh"
tl_cell busipc "$ctl"
unset RAYFLEET_BUS_IPC_AUTH RAYFLEET_BUS_IPC_ALLOW_UIDS

metric() { # metric PORT NAME_AND_LABELS: prints the value, 0 when absent
    curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'
}
bus_port() { grep -o 'bus ready (pid [0-9]*, /readyz 200, health port [0-9]*' "$1" | grep -o '[0-9]*$'; }
free_port() { # a port nothing listens on
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    echo 0
}
me=$(id -u)
# Another uid: nobody through setpriv when root (the probe copied where nobody can run it).
other=""
if [[ $me -eq 0 ]] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
    pub_dir=$(mktemp -d /tmp/rfbusipc-bin.XXXXXX)
    chmod 755 "$pub_dir"
    cp "$probe" "$pub_dir/probe" && chmod 755 "$pub_dir/probe"
    tl_trap_extra() { rm -rf "$pub_dir"; }
    trap 'tl_cleanup; tl_trap_extra' EXIT
    other=$(id -u nobody)
    as_other() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$pub_dir/probe" "$@"; }
else
    echo "# not root (or no setpriv): the other-uid checks use --bus.ipc-allow-uids without uid $me"
fi

if ! "$ctl" up --sim --detach --state-dir "$state" --timeout 60s >"$tmp/kc" 2>"$tmp/up.err"; then
    bad "up --sim --detach"; cat "$tmp/up.err"; tl_summary; exit 1
fi
ok "up --sim --detach (ipc:// peer uids by default)"
[[ ! -e $state/keys ]] && ok "no CURVE keys made" || bad "no CURVE keys made ($state/keys exists)"
has "bus log: peer uids on both ipc:// sockets, no CURVE" "$(grep 'forwarder ready' "$state/logs/bus.log")" \
    '"curve":"off"' '"frontend_auth":"peercred"' '"backend_auth":"peercred"'
if grep -q 'CURVE is off' "$state/logs/bus.log"; then bad "no open-bus warning"; else ok "no open-bus warning"; fi
for s in bus-in bus-out; do
    m=$(stat -c %a "$state/$s")
    [[ $m == 600 ]] && ok "socket $s is 0600" || bad "socket $s is 0600 ($m)"
done
m=$(stat -c %a "$state")
[[ $m == 700 ]] && ok "state dir is 0700" || bad "state dir is 0700 ($m)"
port=$(bus_port "$tmp/up.err")
[[ -n $port ]] && ok "bus health port found ($port)" || { bad "bus health port"; tl_summary; exit 1; }
allowed=$(metric "$port" 'rayfleet_bus_auth_peercred_total{result="allowed"}')
[[ $allowed -ge 4 ]] && ok "the services joined by uid (allowed $allowed)" ||
    bad "the services joined by uid (allowed $allowed)"
[[ $(metric "$port" 'rayfleet_bus_auth_total{result="refused"}') -eq 0 ]] &&
    ok "nothing refused yet" || bad "nothing refused yet"

# --- the set's sockets: same uid in, another uid kept out by the 0700 directory -------------------
front="ipc://$state/bus-in"
back="ipc://$state/bus-out"
"$probe" --mode sub --bus.endpoint "$back" --duration 4s >"$tmp/good.out" 2>"$tmp/good.err" &
good=$!
if [[ -n $other ]]; then
    as_other --mode sub --bus.endpoint "$back" --duration 4s >"$tmp/other-sub.out" 2>&1 &
    osub=$!
fi
sleep 1
if [[ -n $other ]]; then
    as_other --mode pub --bus.endpoint "$front" --event-id 555555 --duration 2s >"$tmp/other-pub.out" 2>&1 &
    opub=$!
fi
"$probe" --mode pub --bus.endpoint "$front" --event-id 444444 --duration 2s >"$tmp/good-pub.out" 2>&1
wait $good
g=$(cat "$tmp/good.out")
has "same-uid subscriber hears the set (bus heartbeat)" "$g" '^peer bus$'
has "same-uid publisher's event gets through, decoded" "$g" '^event 444444 curve-probe$'
if [[ -n $other ]]; then
    wait $osub $opub
    grep -q '^event 555555 ' <<<"$g" && bad "nobody's event never reaches a subscriber" ||
        ok "nobody's event never reaches a subscriber"
    out=$(cat "$tmp/other-sub.out")
    if grep -q '^received 0$' <<<"$out" && ! grep -q '^peer ' <<<"$out"; then
        ok "nobody's subscriber receives nothing (0700 state dir)"
    else
        bad "nobody's subscriber receives nothing"; sed 's/^/    | /' <<<"$out"
    fi
fi
"$ctl" audit --state-dir "$state" --output json --limit 100000 >"$tmp/audit.json" 2>/dev/null
grep -qE '"cause_event_id": *555555' "$tmp/audit.json" && bad "no audit row caused by nobody's event" ||
    ok "no audit row caused by nobody's event"
"$ctl" down --state-dir "$state" --timeout 5s >/dev/null 2>&1

# --- abstract sockets: no file mode, the uid check alone -----------------------------------------
ain="ipc://@rfbusipc-$$-in"
aout="ipc://@rfbusipc-$$-out"
hp=$(free_port)
args=(--bus.frontend "$ain" --bus.backend "$aout" --health.port "$hp" --state-dir "$tmp/bus1")
[[ -z $other ]] && args+=(--bus.ipc-allow-uids "$((me + 1))")
"$bin/rayfleet-bus" "${args[@]}" >"$tmp/bus1.log" 2>&1 &
bus1=$!
tl_wait 10 curl -sf "http://127.0.0.1:$hp/readyz" && ok "standalone bus on abstract sockets" ||
    bad "standalone bus on abstract sockets"
if [[ -n $other ]]; then
    "$probe" --mode sub --bus.endpoint "$aout" --duration 4s >"$tmp/good2.out" 2>&1 &
    good=$!
    subs=()
    for i in 1 2 3 4 5; do
        as_other --mode sub --bus.endpoint "$aout" --duration 3s >"$tmp/other-sub$i.out" 2>&1 &
        subs+=($!)
    done
    sleep 1
    as_other --mode pub --bus.endpoint "$ain" --event-id 666666 --duration 2s >/dev/null 2>&1 &
    opub=$!
    "$probe" --mode pub --bus.endpoint "$ain" --event-id 777777 --duration 2s >/dev/null 2>&1
    wait $good "${subs[@]}" $opub
    g=$(cat "$tmp/good2.out")
    has "same uid: the event gets through" "$g" '^event 777777 curve-probe$'
    grep -q '^event 666666 ' <<<"$g" && bad "nobody's event is refused" || ok "nobody's event is refused"
    n0=0
    for i in 1 2 3 4 5; do grep -q '^received 0$' "$tmp/other-sub$i.out" && ! grep -q '^peer ' "$tmp/other-sub$i.out" && n0=$((n0 + 1)); done
    [[ $n0 -eq 5 ]] && ok "nobody's 5 subscribers receive nothing" || bad "nobody's 5 subscribers receive nothing ($n0)"
    refused=$(metric "$hp" 'rayfleet_bus_auth_peercred_total{result="refused"}')
    total=$(metric "$hp" 'rayfleet_bus_auth_total{result="refused"}')
    [[ $refused -ge 6 && $total -ge $refused ]] && ok "refusals counted (peercred $refused, auth_total $total)" ||
        bad "refusals counted (peercred $refused, auth_total $total, want >= 6)"
    lines=$(grep -c "\"uid\":\"$other\"" "$tmp/bus1.log")
    has "refusal logged with uid, gid and pid" "$(cat "$tmp/bus1.log")" \
        "ipc client refused: uid not allowed\",\"uid\":\"$other\",\"gid\":\"[0-9]+\",\"pid\":\"[0-9]+\""
    [[ $lines -ge 1 && $lines -le 4 && $lines -lt $refused ]] &&
        ok "logged once per uid per second ($lines lines for $refused refusals)" ||
        bad "logged once per uid per second ($lines lines for $refused refusals)"
else
    "$probe" --mode sub --bus.endpoint "$aout" --duration 3s >"$tmp/own.out" 2>&1 &
    good=$!
    sleep 1
    "$probe" --mode pub --bus.endpoint "$ain" --event-id 666666 --duration 1s >/dev/null 2>&1
    wait $good
    grep -q '^received 0$' "$tmp/own.out" && ! grep -q '^peer ' "$tmp/own.out" &&
        ok "a uid not in --bus.ipc-allow-uids receives nothing" || bad "a uid not in --bus.ipc-allow-uids receives nothing"
    refused=$(metric "$hp" 'rayfleet_bus_auth_peercred_total{result="refused"}')
    [[ $refused -ge 2 ]] && ok "refusals counted ($refused)" || bad "refusals counted ($refused)"
    has "refusal logged with the uid" "$(cat "$tmp/bus1.log")" "uid not allowed\",\"uid\":\"$me\""
fi
kill $bus1; wait $bus1 2>/dev/null

# --- --bus.ipc-allow-uids without our uid: we are refused too --------------------------------------
if [[ -n $other ]]; then
    hp=$(free_port)
    "$bin/rayfleet-bus" --bus.frontend "$ain-2" --bus.backend "$aout-2" --health.port "$hp" \
        --state-dir "$tmp/bus2" --bus.ipc-allow-uids "$other" >"$tmp/bus2.log" 2>&1 &
    bus2=$!
    tl_wait 10 curl -sf "http://127.0.0.1:$hp/readyz"
    out=$("$probe" --mode sub --bus.endpoint "$aout-2" --duration 2s 2>&1)
    grep -q '^received 0$' <<<"$out" && ! grep -q '^peer ' <<<"$out" &&
        ok "--bus.ipc-allow-uids=$other: uid $me receives nothing" || bad "--bus.ipc-allow-uids=$other: uid $me receives nothing"
    has "--bus.ipc-allow-uids: the refusal names uid $me" "$(cat "$tmp/bus2.log")" "uid not allowed\",\"uid\":\"$me\""
    kill $bus2; wait $bus2 2>/dev/null
fi
expect_code "bus: --bus.ipc-allow-uids must be numbers" 2 \
    "$bin/rayfleet-bus" --bus.frontend "$ain-3" --bus.backend "$aout-3" --health.port 0 --bus.ipc-allow-uids root
expect_code "up: --bus-ipc-auth and --bus-insecure exclude each other" 2 \
    "$ctl" up --sim --bus-ipc-auth peercred --bus-insecure --state-dir "$tmp/x"

# --- one bus, two transports: tcp:// keeps CURVE, ipc:// checks uids ----------------------------
"$probe" --mode keygen --out "$tmp/bus.key" && "$probe" --mode keygen --out "$tmp/client.key" || bad "keygen"
grep public-key "$tmp/client.key" | cut -d'"' -f2 >"$tmp/allow"
tp=$(free_port)
hp=$(free_port)
"$bin/rayfleet-bus" --bus.frontend "tcp://127.0.0.1:$tp" --bus.backend "$aout-4" --health.port "$hp" \
    --state-dir "$tmp/bus4" --bus.curve-key-file "$tmp/bus.key" --bus.curve-allow-file "$tmp/allow" \
    >"$tmp/bus4.log" 2>&1 &
bus4=$!
tl_wait 10 curl -sf "http://127.0.0.1:$hp/readyz"
has "mixed bus: CURVE on tcp://, uids on ipc://" "$(grep 'forwarder ready' "$tmp/bus4.log")" \
    '"frontend_auth":"curve"' '"backend_auth":"peercred"'
"$probe" --mode sub --bus.endpoint "$aout-4" --duration 4s >"$tmp/mixed.out" 2>&1 &
good=$!
sleep 1
"$probe" --mode pub --bus.endpoint "tcp://127.0.0.1:$tp" --event-id 888888 --duration 2s >/dev/null 2>&1 &
ppub=$!
"$probe" --mode pub --bus.endpoint "tcp://127.0.0.1:$tp" --bus.curve-server-key-file "$tmp/bus.key" \
    --bus.curve-key-file "$tmp/client.key" --event-id 999999 --duration 2s >/dev/null 2>&1
wait $good $ppub
g=$(cat "$tmp/mixed.out")
has "tcp:// with a listed CURVE key reaches an ipc:// subscriber" "$g" '^event 999999 curve-probe$'
grep -q '^event 888888 ' <<<"$g" && bad "plain ZMTP on tcp:// is refused" || ok "plain ZMTP on tcp:// is refused"
hs=$(metric "$hp" 'rayfleet_bus_auth_total{result="handshake_failed"}')
[[ $hs -ge 1 ]] && ok "the plain tcp:// peer counted (handshake_failed $hs)" || bad "the plain tcp:// peer counted ($hs)"
kill $bus4; wait $bus4 2>/dev/null
tl_summary
