#!/usr/bin/env bash
# The README's walkthrough ("Try it"), as code. `./dev demo` runs it against the running
# fleet; `./dev test` runs it twice against a fleet of its own (crates/e2e/tests/demo.rs),
# and checks that the README's block is this file's story as written: every line between
# the two markers below, but the `promise` lines (the checks of what each answer promised)
# and with each `step "TEXT"` written `# TEXT`. The story runs as often as you like on one
# fleet: every id in it comes from an answer, every date from today.
#
# Needs httpie (`http`), curl and jq. HOUSEBOOK_GATEWAY (default 127.0.0.1:8088) is where
# the gateway listens: the story's `:8088` and `localhost:8088` are sent there.
set -euo pipefail

GATEWAY="${HOUSEBOOK_GATEWAY:-127.0.0.1:8088}"
HTTPIE="${HOUSEBOOK_HTTPIE:-$(command -v http || true)}"
CURL="$(command -v curl || true)"
[[ -x "$HTTPIE" ]] || { echo "walkthrough: httpie (http) is needed: set HOUSEBOOK_HTTPIE or install it" >&2; exit 2; }
if [[ ! -x "$CURL" ]] || ! command -v jq >/dev/null; then echo "walkthrough: curl and jq are needed" >&2; exit 2; fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/housebook-walkthrough.XXXXXX")
cd "$WORK"
LAST="$WORK/.last"   # the last answer: status, head, body, and the command that got it
mkdir -p "$LAST"
# shellcheck disable=SC2046  # each job's pid, a word each
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

bold=$'\033[1m' dim=$'\033[2m' red=$'\033[31m' green=$'\033[32m' off=$'\033[0m'
if [[ ! -t 2 ]]; then bold="" dim="" red="" green="" off=""; fi
# The transcript goes to stderr (3); an answer's body goes to stdout only where a caller
# captures it (`$(http …)`, a pipe): the transcript shows it otherwise.
exec 3>&2 4>&1
captured() {
    local me=$BASHPID   # this shell's (a $(…) of its own would look at its own stdout)
    [[ "$(stat -L -c %d:%i "/proc/$me/fd/1")" != "$(stat -L -c %d:%i "/proc/$me/fd/4")" ]]
}

# A URL of the story, sent to the gateway under test.
to_gateway() {
    case "$1" in
        :8088*) printf 'http://%s%s' "$GATEWAY" "${1#:8088}" ;;
        localhost:8088*) printf 'http://%s%s' "$GATEWAY" "${1#localhost:8088}" ;;
        *) printf '%s' "$1" ;;
    esac
}

# An answer as a person reads it: its status line, then its body on one line (a list: how
# many, and the first), cut at 300 characters.
show() {
    local status="$1" body="$2" text
    if text=$(jq -c 'if type == "array" then "\(length) item(s)" + (if length > 0 then ", the first: \(.[0] | tojson)" else "" end)
                     elif type == "object" and has("access_token") then .access_token |= .[0:12] + "…" else . end' <<<"$body" 2>/dev/null); then
        text=$(jq -r 'if type == "string" then . else tojson end' <<<"$text")
    else text="$body"; fi
    ((${#text} <= 300)) || text="${text:0:300}…"
    printf '  %s%s%s  %s\n' "$bold" "$status" "$off" "$text" >&3
}

# httpie as the story calls it (`--ignore-stdin` added: this is a script), the answer kept
# for `promise` and shown, its body on stdout.
http() {
    local args=() a
    for a in "$@"; do args+=("$(to_gateway "$a")"); done
    printf '%s\0' "${args[@]}" >"$LAST/command"
    ask "${args[@]}"
    show "$(cat "$LAST/status")" "$(cat "$LAST/body")"
    if captured; then cat "$LAST/body"; fi
}
ask() {
    local out
    out=$("$HTTPIE" --ignore-stdin --print=hb --pretty=none --timeout=30 "$@") ||
        { printf '%shttpie failed: %s%s\n' "$red" "$*" "$off" >&3; exit 1; }
    out="${out//$'\r'/}"
    head -1 <<<"$out" | awk '{print $2}' >"$LAST/status"
    awk 'NR > 1 && /^$/ { exit } NR > 1' <<<"$out" >"$LAST/head"
    awk 'body { print } /^$/ && !body { body = 1 }' <<<"$out" >"$LAST/body"
}

# curl as the story calls it, sent to the gateway under test. In a subshell (a pipe, a
# $(…), a job in the background) it becomes curl itself, so that ending the job ends curl.
curl() {
    local args=() a
    for a in "$@"; do args+=("$(to_gateway "$a")"); done
    if [[ "$BASHPID" != "$$" ]]; then exec "$CURL" "${args[@]}"; fi
    "$CURL" "${args[@]}"
}

# promise [--within SECS] STATUS [JQ]: the last answer has STATUS and its body makes JQ
# true; with --within, the last call is asked again (it must be a GET) until it does or
# SECS pass: the saga's later steps arrive by events.
promise() {
    local within=0
    if [[ "$1" == --within ]]; then within="$2"; shift 2; fi
    local status="$1" check="${2:-true}" deadline=$((SECONDS + within)) args again=""
    until [[ "$(cat "$LAST/status")" == "$status" ]] && jq -e "$check" "$LAST/body" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            printf '  %s✗ promised %s, %s; got %s: %s%s\n' "$red" "$status" "$check" \
                "$(cat "$LAST/status")" "$(head -c 600 "$LAST/body")" "$off" >&3
            exit 1
        fi
        sleep 0.3
        mapfile -d '' -t args <"$LAST/command"
        ask "${args[@]}"
        again=1
    done
    [[ -z "$again" ]] || show "$(cat "$LAST/status")" "$(cat "$LAST/body")"
    printf '  %s✓ %s%s%s\n' "$green" "$status" "${2:+, $check}" "$off" >&3
}

# promise_that [--within SECS] WHAT COMMAND...: COMMAND succeeds (for what is not an
# httpie answer), at once or within SECS.
promise_that() {
    local within=0
    if [[ "$1" == --within ]]; then within="$2"; shift 2; fi
    local what="$1" deadline=$((SECONDS + within)); shift
    until "$@"; do
        if ((SECONDS >= deadline)); then printf '  %s✗ %s%s\n' "$red" "$what" "$off" >&3; exit 1; fi
        sleep 0.3
    done
    printf '  %s✓ %s%s\n' "$green" "$what" "$off" >&3
}
# The live stream's file holds N messages about booking ID.
streamed() { [[ "$(grep '^data:' alice-live.txt | grep -c "$2")" -eq "$1" ]]; }

step() { printf '\n%s# %s%s\n' "$bold" "$*" "$off" >&3; }

# Each command of the story is shown as written, before it runs (tokens by name).
trap 'case "$BASH_COMMAND" in promise*|step*|trap*|jq\ *) ;; *) printf "%s\$ %s%s\n" "$dim" "$BASH_COMMAND" "$off" >&3 ;; esac' DEBUG

# ---- the walkthrough (README.md, "Try it") ----
# httpie at a terminal; a script gives it --ignore-stdin (it reads a body from a stdin that is no terminal)
token() { http --ignore-stdin -f POST :8088/oauth/token grant_type=password username="$1" password="$1" | jq -r .access_token; }
ADMIN=$(token admin); ALICE=$(token alice); BOB=$(token bob)
promise_that "three tokens" test "$ADMIN" != null -a "$ALICE" != null -a "$BOB" != null
# Two nights a month from now (bookings open from today to two years ahead)
IN=$(date -d '+30 days' +%F); OUT=$(date -d '+32 days' +%F)

step "The live stream: alice's messages as they are stored (server-sent events), kept in a file"
curl -sN localhost:8088/notifications/stream -H "Authorization: Bearer $ALICE" >alice-live.txt &

step "F1: an admin registers a house; its id comes back in the answer"
HOUSE=$(http POST :8088/houses "Authorization:Bearer $ADMIN" houseName="Jeju stone house" housePrice=200000 houseDescription="Basalt walls, a tangerine garden" | jq .id)
promise 201 '.houseName == "Jeju stone house" and .housePrice == 200000 and (.id | type) == "number"'

step "F2: alice books two nights; book prices the stay and pays at once: 201 BOOKED"
BOOKING=$(http POST :8088/books "Authorization:Bearer $ALICE" houseId="$HOUSE" checkIn="$IN" checkOut="$OUT" | jq -r .id)
promise 201 '.status == "BOOKED" and .nights == 2 and .housePrice == 400000'
http :8088/payments bookId=="$BOOKING" "Authorization:Bearer $ALICE"          # PAID, 400000
promise 200 'length == 1 and .[0].status == "PAID" and .[0].housePrice == 400000'

step "F3 + F4: house reserves the nights (Paid → HouseRented); the booking turns CONFIRMED"
http :8088/books/"$BOOKING" "Authorization:Bearer $ALICE"                      # CONFIRMED within a second or two
promise --within 30 200 '.status == "CONFIRMED"'
http :8088/houses/"$HOUSE" date=="$IN" "Authorization:Bearer $ALICE"           # RENTED that night
promise 200 '.status == "RENTED"'
http :8088/books order==newest limit==3 "Authorization:Bearer $ADMIN"         # lists page (limit, offset), oldest first unless order=newest
promise 200 '.[0].id == "'"$BOOKING"'"'

step "F7: availability and alice's view, from mypage (built from events alone)"
http :8088/availability houseId=="$HOUSE" checkIn=="$IN" checkOut=="$OUT" "Authorization:Bearer $ALICE"   # taken
promise --within 30 200 '.available == false and (.takenNights | length) == 2'
http :8088/mypages/"$BOOKING" "Authorization:Bearer $ALICE"                    # CONFIRMED, PAID, RENTED
promise --within 30 200 '.status == "CONFIRMED" and .paymentStatus == "PAID" and .houseStatus == "RENTED"'

step "A rejection: bob books the same nights; he is charged, house finds them taken: REJECTED, refunded"
REJECTED=$(http POST :8088/books "Authorization:Bearer $BOB" houseId="$HOUSE" checkIn="$IN" checkOut="$OUT" | jq -r .id)
promise 201 '.status == "BOOKED"'
http :8088/mypages/"$REJECTED" "Authorization:Bearer $BOB"                     # REJECTED, reason NIGHTS_TAKEN, refunded
promise --within 30 200 '.status == "REJECTED" and .reason == "NIGHTS_TAKEN" and .refunded == true'
http :8088/payments bookId=="$REJECTED" "Authorization:Bearer $BOB"            # PAYMENT_CANCELED
promise 200 'length == 1 and .[0].status == "PAYMENT_CANCELED"'

step "F5 + F6: alice cancels (the seed's PATCH; POST /books/{id}/cancel works too): refunded, nights freed"
http PATCH :8088/books/"$BOOKING" "Authorization:Bearer $ALICE" status=BOOK_CANCELED
promise 200 '.status == "BOOK_CANCELED"'
http :8088/payments bookId=="$BOOKING" "Authorization:Bearer $ALICE"          # PAYMENT_CANCELED
promise --within 30 200 '.[0].status == "PAYMENT_CANCELED"'
http :8088/mypages/"$BOOKING" "Authorization:Bearer $ALICE"                    # BOOK_CANCELED, refunded, RELEASED
promise --within 30 200 '.status == "BOOK_CANCELED" and .refunded == true and .houseStatus == "RELEASED"'
http :8088/availability houseId=="$HOUSE" checkIn=="$IN" checkOut=="$OUT" "Authorization:Bearer $ALICE"   # free again
promise --within 30 200 '.available == true'
http :8088/notifications order==newest limit==4 "Authorization:Bearer $ALICE"  # refunded, cancelled, confirmed, paid
promise --within 30 200 '[.[] | select(.bookId == "'"$BOOKING"'") | .kind] | sort == ["BOOKING_CANCELED", "BOOKING_CONFIRMED", "PAYMENT_RECEIVED", "PAYMENT_REFUNDED"]'

step "What the live stream brought, as it happened"
grep "$BOOKING" alice-live.txt                                                 # the same four messages, each as it was stored
promise_that --within 10 "the stream brought the booking's four messages" streamed 4 "$BOOKING"
kill %1                                                                        # the stream ends

step "Others' bookings are not yours; customers cannot register houses; no token: 401"
http :8088/books/"$BOOKING" "Authorization:Bearer $BOB"                        # 403
promise 403
http POST :8088/houses "Authorization:Bearer $ALICE" houseName=x housePrice=1  # 403
promise 403
http :8088/books                                                               # 401
promise 401

step "The same with curl"
ALICE=$(curl -s localhost:8088/oauth/token -d grant_type=password -d username=alice -d password=alice | jq -r .access_token)
curl -s localhost:8088/books/"$BOOKING" -H "Authorization: Bearer $ALICE" | jq .status   # "BOOK_CANCELED"
promise_that "curl reads the cancelled booking" test "$(curl -s localhost:8088/books/"$BOOKING" -H "Authorization: Bearer $ALICE" | jq -r .status)" = BOOK_CANCELED
# ---- end of the walkthrough ----

trap - DEBUG
printf '\n%sThe walkthrough ran as the README says: every promise kept.%s\n' "$green" "$off" >&3
