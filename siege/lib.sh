# shellcheck shell=bash
# Shared by the siege scenarios: target URL, siege itself, tokens, houses, a URL file, and
# the time the saga took to settle after the load.
# Traffic goes only where you point it: by default the local fleet (./dev up) on 127.0.0.1.
set -euo pipefail
URL="${1:-${HOUSEBOOK_URL:-http://127.0.0.1:8088}}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if ! command -v siege >/dev/null; then
    echo "==> installing siege (apt)" >&2
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq siege >/dev/null
fi
command -v jq >/dev/null || { echo "jq is needed (apt-get install jq)" >&2; exit 1; }
# Our own siege settings: every answer logged (to count statuses), keep-alive, and no
# abort on failures — a 503 is a result to report, not a reason to stop.
export SIEGERC="$WORK/siegerc"
printf 'verbose = true\ncolor = off\nshow-logfile = false\nlogging = false\nprotocol = HTTP/1.1\nconnection = keep-alive\nfailures = 1000000\n' >"$SIEGERC"

token() {
    curl -fsS "$URL/oauth/token" -d grant_type=password -d "username=$1" -d "password=${2:-$1}" | jq -r .access_token
}

# The scenarios book as one customer at machine pace, which one customer may not do by
# default (90 nights ahead, ten bookings at once then one every five seconds). They raise
# both, explicitly: on the local fleet by restarting book's replicas with no bound (and
# exporting it, so that a scenario's own restarts keep it); a cluster's book must be given
# HOUSEBOOK_BOOKING__MAX_NIGHTS_AHEAD=0 and HOUSEBOOK_BOOKING__PACE__PER_SECOND=0 (with
# __BURST=0) for the run.
export HOUSEBOOK_BOOKING__MAX_NIGHTS_AHEAD=0 HOUSEBOOK_BOOKING__PACE__PER_SECOND=0 HOUSEBOOK_BOOKING__PACE__BURST=0
DEV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/dev"
if [[ "$URL" == "http://127.0.0.1:8088" && -x "$DEV" ]]; then
    for part in $("$DEV" status | awk '$1 ~ /^book(-[0-9]+)?$/ && $4 == "ready" {print $1}'); do
        echo "==> restarting $part with no bound on one customer's holdings and pace" >&2
        "$DEV" stop "$part" >&2 && "$DEV" start "$part" >&2
    done
else
    echo "==> $URL: its book must allow one customer's machine pace (HOUSEBOOK_BOOKING__MAX_NIGHTS_AHEAD=0, HOUSEBOOK_BOOKING__PACE__PER_SECOND=0, __BURST=0)" >&2
fi

ADMIN=$(token "${HOUSEBOOK_ADMIN_USER:-admin}" "${HOUSEBOOK_ADMIN_PASSWORD:-admin}")
CUSTOMER=$(token "${HOUSEBOOK_CUSTOMER_USER:-alice}" "${HOUSEBOOK_CUSTOMER_PASSWORD:-alice}")

# Registers N houses and waits until book knows them (it learns them from events); one
# booking per house on the last night bookings are open (two years ahead) shows it.
register_houses() {
    local n="$1" ids=()
    for i in $(seq 1 "$n"); do
        ids+=("$(curl -fsS "$URL/houses" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
            -d "{\"houseName\": \"Siege house $i\", \"housePrice\": 100000}" | jq -r .id)")
    done
    # Each house's event may sit on another partition: wait until book knows every one.
    local id deadline=$((SECONDS + 60)) last; last=$(date -d '+729 days' +%F)
    for id in "${ids[@]}"; do
        until curl -fs -o /dev/null "$URL/books" -H "Authorization: Bearer $CUSTOMER" -H 'content-type: application/json' \
                -d "{\"houseId\": $id, \"bookDate\": \"$last\"}"; do
            ((SECONDS < deadline)) || { echo "book never learned house $id" >&2; exit 1; }
            sleep 0.5
        done
    done
    echo "${ids[@]}"
}

# A siege URL file of one-night bookings, one line per (house, night) and 20000 of them,
# so that few of siege's random picks book the same night twice; the nights run from
# tomorrow over 700 days (bookings open two years ahead), then start again.
booking_urls() {
    local file="$1"; shift
    python3 - "$URL" "$@" >"$file" <<'PY'
import datetime, sys
url, houses = sys.argv[1], sys.argv[2:]
start = datetime.date.today() + datetime.timedelta(days=1)
for i in range(20000):
    night = start + datetime.timedelta(days=(i // len(houses)) % 700)
    print(f'{url}/books POST {{"houseId": {houses[i % len(houses)]}, "bookDate": "{night}"}}')
PY
}

set_faults() {
    curl -fsS -X PUT "$URL/faults" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "$1" >/dev/null
}

# Runs siege; its per-request lines go to a file, its summary to the terminal.
run_siege() {
    siege "$@" --content-type "application/json" --header "Authorization: Bearer $CUSTOMER" >"$WORK/siege.out"
}

# After siege stopped: how long until the saga settled — no booking left BOOKED (waiting
# for the house's answer). An admin lists BOOKED bookings through the gateway.
report_settled() {
    local stopped=$SECONDS start_ns; start_ns=$(date +%s%N)
    local booked
    booked=$(grep -c 'HTTP/1.1 201' "$WORK/siege.out" || true)
    until [[ "$(curl -fsS "$URL/books?status=BOOKED&limit=1" -H "Authorization: Bearer $ADMIN")" == "[]" ]]; do
        if ((SECONDS - stopped > 600)); then echo "==> NOT settled 600 s after siege stopped" >&2; return 1; fi
        sleep 0.2
    done
    local ms=$((($(date +%s%N) - start_ns) / 1000000))
    echo "==> all ${booked} bookings answered 201 decided (none BOOKED) $((ms / 1000)).$(printf %03d $((ms % 1000))) s after siege stopped"
}
