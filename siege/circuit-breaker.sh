#!/usr/bin/env bash
# The seed's circuit-breaker scenario: payment slowed to 400-620 ms, book's timeout 610 ms,
# 100 concurrent clients booking for 60 s. The seed reported 17.15 trans/sec at 63.55 %
# availability. Usage: siege/circuit-breaker.sh [GATEWAY_URL]   (CONCURRENCY, DURATION)
# shellcheck source=siege/lib.sh
source "$(dirname "$0")/lib.sh"
read -r -a HOUSES <<<"$(register_houses 50)"
booking_urls "$WORK/urls" "${HOUSES[@]}"
set_faults '{"delayMinMs": 400, "delayMaxMs": 620, "failureRate": 0}'
trap 'set_faults "{}"; rm -rf "$WORK"' EXIT
echo "==> siege -c${CONCURRENCY:-100} -t${DURATION:-60S} POST /books on $URL (payment slowed to 400-620 ms)"
run_siege -c"${CONCURRENCY:-100}" -t"${DURATION:-60S}" -i -f "$WORK/urls" || true
echo "==> answers by status:"
grep -oE 'HTTP/1.1 [0-9]+' "$WORK/siege.out" | sort | uniq -c || true
report_settled
