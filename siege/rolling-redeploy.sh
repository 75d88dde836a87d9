#!/usr/bin/env bash
# Rolling redeploy under load: book, payment and house are restarted one by one while
# clients keep booking and reading, and siege reports the availability.
#   local fleet:  HOUSEBOOK_REPLICAS=2 ./dev up -d --release && HOUSEBOOK_REPLICAS=2 siege/rolling-redeploy.sh
#   a cluster:    K8S=1 siege/rolling-redeploy.sh https://GATEWAY
# Locally each replica is stopped (SIGTERM: readiness drops, the gateway stops sending it
# calls, in-flight work finishes, offsets are committed) and started again, one at a time;
# with a single replica each restart is a gap the gateway answers with 503 + Retry-After.
# In a cluster maxUnavailable 0, readiness and the preStop drain do the same.
# shellcheck source=siege/lib.sh
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
        for ((i = 1; i <= ${HOUSEBOOK_REPLICAS:-1}; i++)); do
            instance="$svc"; ((i == 1)) || instance="$svc-$i"
            "$ROOT/dev" stop "$instance" && "$ROOT/dev" start "$instance"
            sleep 1
        done
    fi
    sleep 5
done
wait "$SIEGE" || true
echo "==> answers by status:"
grep -oE 'HTTP/1.1 [0-9]+' "$WORK/siege.out" | sort | uniq -c || true
report_settled
