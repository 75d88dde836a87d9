#!/usr/bin/env bash
# Rolling redeploy under load: book, payment and house are restarted one by one while
# clients keep booking and reading, and siege reports the availability.
#   local fleet (./dev up):   siege/rolling-redeploy.sh
#   a cluster:                K8S=1 siege/rolling-redeploy.sh https://GATEWAY
# Locally each service runs once, so a restart is a short gap the gateway answers with
# 503 + Retry-After; in a cluster maxUnavailable 0, readiness and preStop drain make it none.
source "$(dirname "$0")/lib.sh"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
read -r -a HOUSES <<<"$(register_houses 10)"
booking_urls "$WORK/urls" "${HOUSES[@]}"
for h in "${HOUSES[@]}"; do echo "$URL/houses/$h" >>"$WORK/urls"; done
echo "==> siege -c${CONCURRENCY:-20} -t${DURATION:-60S} on $URL while book, payment and house restart"
run_siege -c"${CONCURRENCY:-20}" -t"${DURATION:-60S}" -i -f "$WORK/urls" &
SIEGE=$!
sleep 5
for svc in book payment house; do
    if [[ "${K8S:-}" == 1 ]]; then
        kubectl -n housebook rollout restart "deployment/$svc"
        kubectl -n housebook rollout status "deployment/$svc" --timeout=300s
    else
        "$ROOT/dev" stop "$svc" && "$ROOT/dev" start "$svc"
    fi
    sleep 5
done
wait "$SIEGE" || true
echo "==> answers by status:"
grep -oE 'HTTP/1.1 [0-9]+' "$WORK/siege.out" | sort | uniq -c || true
