#!/usr/bin/env bash
# Load for the HPA (the seed: kubectl autoscale --cpu-percent=15 --min=1 --max=10): a mix
# of bookings and reads. In a cluster, watch it scale with: kubectl -n housebook get hpa -w
# Usage: siege/autoscale.sh [GATEWAY_URL]   (CONCURRENCY, DURATION)
# shellcheck source=siege/lib.sh
source "$(dirname "$0")/lib.sh"
read -r -a HOUSES <<<"$(register_houses 10)"
booking_urls "$WORK/urls" "${HOUSES[@]}"
for h in "${HOUSES[@]}"; do
    echo "$URL/houses/$h"
    echo "$URL/availability?houseId=$h&checkIn=$(date -d "+30 days" +%F)&checkOut=$(date -d "+34 days" +%F)"
    echo "$URL/mypages?limit=20"
done >>"$WORK/urls"
if command -v kubectl >/dev/null && kubectl -n housebook get hpa >/dev/null 2>&1; then
    kubectl -n housebook get hpa -w &
    trap 'kill %1 2>/dev/null; rm -rf "$WORK"' EXIT
fi
echo "==> siege -c${CONCURRENCY:-50} -t${DURATION:-60S} mixed load on $URL"
run_siege -c"${CONCURRENCY:-50}" -t"${DURATION:-60S}" -i -f "$WORK/urls" || true
