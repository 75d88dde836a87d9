"""Extracts what Prometheus's own tool checks from a built overlay (k8s/validate.sh):

- the PrometheusRule's groups, as a rules file (`promtool check rules`, and the alerts'
  unit tests in k8s/alerts-test.yaml: `promtool test rules`);
- every query of the Grafana dashboard, as recording rules (`promtool check rules` parses
  each), after checking the dashboard's shape: a uid and title, panels with a title and
  at least one query, each query's metrics among the fleet's.

    monitoring.py BUILT.yaml DASHBOARD.json OUT_DIR
"""

import json
import re
import sys

import yaml

# The fleet's metric families (crates/platform/src/metrics.rs, the breaker's in
# platform::calls) and those the cluster provides (kube-state-metrics).
KNOWN = {
    "housebook_http_requests_total",
    "housebook_http_request_duration_seconds_bucket",
    "housebook_http_request_duration_seconds_sum",
    "housebook_http_request_duration_seconds_count",
    "housebook_outbox_backlog",
    "housebook_outbox_published_total",
    "housebook_events_total",
    "housebook_consumer_lag",
    "housebook_circuit_open",
    "housebook_circuit_rejected_total",
    "kube_pod_container_status_restarts_total",
    "kube_pod_info",
    "kube_horizontalpodautoscaler_status_current_replicas",
}


def metrics_in(expr: str) -> set[str]:
    """The metric names a query reads (identifiers followed by `{` or `[`, or bare)."""
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}", "{}", bare)
    names = set(re.findall(r"\b([a-z_][a-z0-9_:]*)\b", bare))
    return {n for n in names if n.startswith(("housebook_", "kube_"))}


def main(built: str, dashboard: str, out: str) -> int:
    docs = [d for d in yaml.safe_load_all(open(built)) if d]
    rules = [d for d in docs if d.get("kind") == "PrometheusRule"]
    if len(rules) != 1:
        print(f"expected one PrometheusRule, found {len(rules)}")
        return 1
    groups = rules[0]["spec"]["groups"]
    yaml.safe_dump({"groups": groups}, open(f"{out}/rules.yaml", "w"), sort_keys=False)
    problems = []
    for g in groups:
        for r in g["rules"]:
            unknown = metrics_in(r["expr"]) - KNOWN
            if unknown:
                problems.append(f"alert {r.get('alert')}: unknown metrics {sorted(unknown)}")

    d = json.load(open(dashboard))
    for key in ("uid", "title", "panels"):
        if not d.get(key):
            problems.append(f"dashboard: no {key}")
    queries = []
    for i, p in enumerate(d.get("panels", [])):
        title = p.get("title") or f"panel {i}"
        if not p.get("title"):
            problems.append(f"dashboard panel {i}: no title")
        targets = [t.get("expr") for t in p.get("targets", []) if t.get("expr")]
        if not targets:
            problems.append(f"dashboard panel {title!r}: no query")
        for expr in targets:
            unknown = metrics_in(expr) - KNOWN
            if unknown:
                problems.append(f"dashboard panel {title!r}: unknown metrics {sorted(unknown)}")
            queries.append({"record": f"dashboard:panel_{len(queries)}", "expr": expr})
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": queries}]},
                   open(f"{out}/dashboard-rules.yaml", "w"), sort_keys=False)
    for p in problems:
        print(p)
    print(f"monitoring: {sum(len(g['rules']) for g in groups)} alert rules, "
          f"{len(queries)} dashboard queries extracted")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
