#!/usr/bin/env python3
"""Policy checks on rendered manifests: what every workload of the fleet must have.

    check.py RENDERED.yaml                   check one rendered overlay (kubectl kustomize output)
    check.py --production RENDERED.yaml      ... and the checks of a real cluster (below)
    check.py --self-test LOCAL.yaml PROD.yaml  prove the checks catch what they claim to

A real cluster (every overlay but local) also: carries no value of the development
Secret (overlays/local/secrets-dev.yaml: keys, passwords, client secrets, user hashes),
in plain text or base64, anywhere; refuses development credentials
(HOUSEBOOK_AUTH__FORBID_DEV_CREDENTIALS=true); does not enable fault injection; serves
/metrics on an admin port that no Service exposes.

Every Deployment and StatefulSet: startup, readiness and liveness probes; CPU and memory
requests and limits; non-root, read-only root filesystem, no privilege escalation.
Every service Deployment (app.kubernetes.io/component=service) also: rolling update with
maxUnavailable 0, a preStop drain shorter than its grace period, a Service, an
autoscaling/v2 HPA on CPU, and a PodDisruptionBudget selecting its pods; a container
port named grpc is behind a Service port (appProtocol grpc), checked by a gRPC probe, and
let in by a NetworkPolicy. Traces go to an OTLP endpoint that a NetworkPolicy lets them
reach. The Ingress routes to the gateway's public port only, only the ingress controller
(or the load balancer's subnets) may reach that port, and the public gateway Service does
not expose its internal (fleet token) port. The namespace
has a default-deny NetworkPolicy; the Kafka topics the services use are declared (one per
producing context, and the dead-letter topic), each with at least 3 partitions; the settings
./dev sets for the local broker only (fetch wait, rejoin) are not set: a cluster keeps
Kafka's defaults.
"""
import base64
import copy
import json
import os
import re
import sys

import yaml

DEV_SECRET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "overlays/local/secrets-dev.yaml")


# Settings a cluster leaves at Kafka's and librdkafka's defaults: the fetch wait (a shorter
# one only makes the brokers look more often; no fleet sets it since the local broker's
# patch, docs/broker.md) and the rejoin workaround Tansu once needed.
LOCAL_BROKER_ONLY = ("HOUSEBOOK_KAFKA__FETCH_WAIT_MS", "HOUSEBOOK_KAFKA__REJOIN_UNASSIGNED_MS")
# The topics the services publish on and read (crates/events: Context::topic) and the
# dead-letter topic (platform: KafkaSettings::dead_letter_topic).
TOPICS = ("housebook.booking.events", "housebook.payment.events", "housebook.house.events", "housebook.events.dlq")
DLQ = "housebook.events.dlq"
# What each service writes (its context's topic) and reads (the contexts of the events
# its consumer handles: each service's inbound/kafka.rs `handles`), as docs/architecture.md's topic
# table says. A service absent from READS consumes nothing (and parks nothing).
WRITES = {"book": "housebook.booking.events", "payment": "housebook.payment.events", "house": "housebook.house.events"}
READS = {
    "book": {"housebook.payment.events", "housebook.house.events"},
    "house": {"housebook.booking.events", "housebook.payment.events"},
    "notification": {"housebook.booking.events", "housebook.payment.events"},
    "mypage": {"housebook.booking.events", "housebook.payment.events", "housebook.house.events"},
}
# The fleet's services (crates/fleet; validate.sh passes `fleet json`), and those that
# speak Kafka.
if "HOUSEBOOK_FLEET_JSON" not in os.environ:
    sys.exit("check.py: HOUSEBOOK_FLEET_JSON is not set (k8s/validate.sh sets it from `fleet json`)")
FLEET = json.loads(os.environ["HOUSEBOOK_FLEET_JSON"])["services"]
# The workspace's version: every image of the fleet is deployed by it, never by `latest`.
VERSION = json.loads(os.environ["HOUSEBOOK_FLEET_JSON"])["version"]
SERVICES = tuple(s["name"] for s in FLEET)
KAFKA_CLIENTS = tuple(s["name"] for s in FLEET if s["kafka"])


def find(docs, kind, name=None):
    return [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).get("matchLabels", {}).items())


class Tally:
    """Counts the checks that pass and names those that fail."""

    def __init__(self):
        self.passed, self.failures = 0, []

    def need(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)


# What a cluster must have before the manifests apply, beyond Kubernetes itself: the
# operator behind each custom kind the manifests use. docs/deploy.md ("What a cluster needs
# first") and k8s/preflight.sh list the same; a kind from elsewhere fails here until it is
# added to all three.
PREREQUISITES = {
    "Kafka": "Strimzi (kafka.strimzi.io)",
    "KafkaNodePool": "Strimzi (kafka.strimzi.io)",
    "KafkaTopic": "Strimzi (kafka.strimzi.io)",
    "KafkaUser": "Strimzi (kafka.strimzi.io)",
    "PodMonitor": "the Prometheus operator (monitoring.coreos.com)",
    "PrometheusRule": "the Prometheus operator (monitoring.coreos.com)",
}
CORE_KINDS = {
    "Namespace", "ConfigMap", "Secret", "Service", "Deployment", "StatefulSet", "Ingress",
    "NetworkPolicy", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceAccount",
}


def check(docs):
    """Returns (passed, failures) for a list of manifests."""
    tally = Tally()
    need = tally.need

    for d in docs:
        kind = d.get("kind")
        need(kind in CORE_KINDS or kind in PREREQUISITES,
             f"{kind}/{d.get('metadata', {}).get('name')} is a Kubernetes kind or its operator is a listed prerequisite")

    workloads = find(docs, "Deployment") + find(docs, "StatefulSet")
    need(bool(workloads), "there are workloads")
    for w in workloads:
        name = f"{w['kind']}/{w['metadata']['name']}"
        pod = w["spec"]["template"]["spec"]
        pod_sc = pod.get("securityContext", {})
        for c in pod.get("containers", []):
            cname = f"{name} container {c['name']}"
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                need(probe in c, f"{cname} has a {probe}")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    need(r in res.get(part, {}), f"{cname} sets resources.{part}.{r}")
            sc = c.get("securityContext", {})
            need(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, f"{cname} runs as non-root")
            need(sc.get("readOnlyRootFilesystem") is True, f"{cname} has a read-only root filesystem")
            need(sc.get("allowPrivilegeEscalation") is False, f"{cname} forbids privilege escalation")

    for w in workloads:
        for c in w["spec"]["template"]["spec"].get("containers", []):
            image = c.get("image", "")
            if "housebook/" in image:
                need(image.rsplit(":", 1)[-1] == VERSION and ":" in image.rsplit("/", 1)[-1],
                     f"{w['metadata']['name']} runs its image by the fleet's version {VERSION} ({image})")

    services = [d for d in find(docs, "Deployment") if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "service"]
    need(sorted(d["metadata"]["name"] for d in services) == sorted(SERVICES), f"a Deployment for each of the fleet's services {SERVICES} (found {[d['metadata']['name'] for d in services]})")
    for d in services:
        n = d["metadata"]["name"]
        pod_labels = d["spec"]["template"]["metadata"]["labels"]
        ru = d["spec"].get("strategy", {}).get("rollingUpdate", {})
        need(ru.get("maxUnavailable") == 0, f"{n} rolls with maxUnavailable 0")
        pod = d["spec"]["template"]["spec"]
        pre = [c.get("lifecycle", {}).get("preStop") for c in pod["containers"]]
        need(all(pre), f"{n} drains in preStop")
        sleep = max((p or {}).get("sleep", {}).get("seconds", 0) for p in pre)
        need(pod.get("terminationGracePeriodSeconds", 30) > sleep + 10, f"{n} grace period covers the preStop drain")
        need(any(matches({"matchLabels": s["spec"].get("selector", {})}, pod_labels) for s in find(docs, "Service")), f"{n} has a Service")
        hpas = [h for h in find(docs, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == n]
        need(len(hpas) == 1 and hpas[0]["apiVersion"] == "autoscaling/v2", f"{n} has an autoscaling/v2 HPA")
        need(any(m.get("resource", {}).get("name") == "cpu" for h in hpas for m in h["spec"].get("metrics", [])), f"{n} scales on CPU")
        need(any(matches(p["spec"]["selector"], pod_labels) for p in find(docs, "PodDisruptionBudget")), f"{n} has a PodDisruptionBudget")
        for c in pod["containers"]:
            for port in (p for p in c.get("ports", []) if p.get("name") == "grpc"):
                number = port["containerPort"]
                need(any(sp.get("targetPort") in ("grpc", number) and sp.get("appProtocol") == "grpc"
                         for s in find(docs, "Service") if matches({"matchLabels": s["spec"].get("selector", {})}, pod_labels)
                         for sp in s["spec"].get("ports", [])), f"{n} has a Service port for gRPC")
                need(any(c.get(probe, {}).get("grpc", {}).get("port") == number
                         for probe in ("startupProbe", "readinessProbe", "livenessProbe")), f"{n} has a gRPC probe")
                need(any(matches(np["spec"].get("podSelector"), pod_labels)
                         and any(pp.get("port") == number for rule in np["spec"].get("ingress", []) for pp in rule.get("ports", []))
                         for np in find(docs, "NetworkPolicy")), f"{n} lets gRPC clients in")

    config = {}
    for c in find(docs, "ConfigMap", "housebook-config"):
        config.update(c.get("data") or {})
    otlp = config.get("HOUSEBOOK_LOG__OTLP_ENDPOINT", "")
    port = re.search(r":(\d+)/", otlp)
    need(bool(port), "traces go to an OTLP endpoint (HOUSEBOOK_LOG__OTLP_ENDPOINT)")
    need(bool(port) and any(int(pp.get("port", 0)) == int(port.group(1))
                            for np in find(docs, "NetworkPolicy") for rule in np["spec"].get("egress", [])
                            for pp in rule.get("ports", [])), "a NetworkPolicy lets traces out to the collector")
    need(any(p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes", [])) >= {"Ingress", "Egress"}
             for p in find(docs, "NetworkPolicy")), "a default-deny NetworkPolicy")
    # What ./dev sets for the local broker only (docs/broker.md): a cluster runs Apache
    # Kafka with Kafka's and librdkafka's defaults.
    envs = dict(config)
    for d in find(docs, "Deployment"):
        for c in d["spec"]["template"]["spec"].get("containers", []):
            envs.update({e["name"]: e.get("value") for e in c.get("env", [])})
    for key in LOCAL_BROKER_ONLY:
        need(key not in envs, f"{key} is left at Kafka's default")
    # The Ingress reaches the gateway's public port only: never the internal one, where
    # the fleet's client-credentials tokens are issued.
    for ing in find(docs, "Ingress"):
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                svc = path["backend"]["service"]
                need(svc["name"] == "gateway" and svc["port"].get("name") == "http",
                     f"Ingress {ing['metadata']['name']} routes to the gateway's public port only")
    # ... and only the ingress controller (or the load balancer's subnets) reaches that
    # port: X-Forwarded-For is believed one hop, so no pod may pose as the proxy.
    for pol in find(docs, "NetworkPolicy", "gateway"):
        public = [r for r in pol["spec"].get("ingress", [])
                  if any(p.get("port") == 8080 for p in r.get("ports", []))]
        need(bool(public) and all(r.get("from") for r in public),
             "the gateway's public port admits the ingress controller only, not every pod")
    for svc in find(docs, "Service", "gateway"):
        need(all(str(p.get("targetPort")) not in ("internal", "8089") for p in svc["spec"]["ports"]),
             "the public gateway Service does not expose the internal token port")
    # The gateway faces the internet: it does not continue a client's trace; the services
    # behind it do continue the gateway's (so nothing else turns trust off).
    for d in find(docs, "Deployment"):
        for c in d["spec"]["template"]["spec"].get("containers", []):
            trust = {e["name"]: e.get("value") for e in c.get("env", [])}.get("HOUSEBOOK_HTTP__TRUST_TRACE_CONTEXT")
            if d["metadata"]["name"] == "gateway":
                need(trust == "false", "the gateway starts its own traces (HTTP__TRUST_TRACE_CONTEXT=false)")
            else:
                need(trust in (None, "true"), f"{d['metadata']['name']} continues the gateway's trace")
    need(config.get("HOUSEBOOK_HTTP__TRUST_TRACE_CONTEXT", "true") == "true",
         "trace trust is set per edge, not for the whole fleet")
    need(envs.get("HOUSEBOOK_GRPC__REFLECTION", "false") != "true", "gRPC reflection is off in the cluster")
    check_kafka_access(docs, config, need)
    topics = find(docs, "KafkaTopic")
    declared = {t["metadata"]["name"] for t in topics}
    for name in TOPICS:
        need(name in declared, f"topic {name} is declared")
    for t in topics:
        need(t["spec"].get("partitions", 0) >= 3, f"topic {t['metadata']['name']} has at least 3 partitions")
    return tally.passed, tally.failures


def dev_secret_values():
    """Every secret value of the development Secret: each PEM body line, each argon2 hash,
    each password and URL; not the TOML structure around the users."""
    values = set()
    for doc in yaml.safe_load_all(open(DEV_SECRET)):
        for v in (doc or {}).get("stringData", {}).values():
            for line in str(v).splitlines():
                line = line.strip()
                hashes = re.findall(r"\$argon2[^\"\s]+", line)
                if hashes:
                    values.update(hashes)
                elif line and not line.startswith(("-----", "[[", "name =", "roles =")):
                    values.add(line)
    return values


def check_production(docs):
    """Returns (passed, failures) of the checks a real cluster needs on top of check()."""
    tally = Tally()
    need = tally.need

    text = yaml.safe_dump_all(docs)
    for d in find(docs, "Secret"):
        for v in (d.get("data") or {}).values():
            try:
                text += "\n" + base64.b64decode(v).decode("utf-8", "replace")
            except ValueError:
                pass
    secrets = dev_secret_values()
    need(len(secrets) >= 10, f"the development Secret's values were read ({len(secrets)})")
    for value in sorted(secrets):
        need(value not in text, f"no development secret value ({value[:12]}...) in the manifests")
    config = {}
    for c in find(docs, "ConfigMap", "housebook-config"):
        config.update(c.get("data") or {})
    need(config.get("HOUSEBOOK_AUTH__FORBID_DEV_CREDENTIALS") == "true", "development credentials are refused")
    need(config.get("HOUSEBOOK_FAULTS__ENABLED", "false") != "true", "fault injection is not enabled")
    # The internet reaches the gateway over TLS only: HTTPS at the load balancer, HTTP
    # redirected, HSTS from the gateway.
    for ing in find(docs, "Ingress"):
        notes = ing["metadata"].get("annotations") or {}
        tls = bool(ing["spec"].get("tls")) or (
            "HTTPS" in notes.get("alb.ingress.kubernetes.io/listen-ports", "")
            and notes.get("alb.ingress.kubernetes.io/certificate-arn", "").startswith("arn:aws:acm:"))
        need(tls, f"Ingress {ing['metadata']['name']} terminates TLS with a certificate")
        need(notes.get("alb.ingress.kubernetes.io/ssl-redirect") == "443"
             or notes.get("nginx.ingress.kubernetes.io/force-ssl-redirect") == "true",
             f"Ingress {ing['metadata']['name']} redirects HTTP to HTTPS")
    gateway_env = {e["name"]: e.get("value") for d in find(docs, "Deployment", "gateway")
                   for c in d["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    need(int(gateway_env.get("HOUSEBOOK_HSTS_MAX_AGE_SECS") or 0) >= 15_552_000,
         "the gateway sends HSTS (at least 180 days)")
    admin = config.get("HOUSEBOOK_HTTP__ADMIN_PORT")
    need(admin is not None, "/metrics is on an admin port")
    for svc in find(docs, "Service"):
        for port in svc["spec"].get("ports", []):
            need(str(port.get("targetPort")) not in (str(admin), "admin") and str(port.get("port")) != str(admin),
                 f"Service {svc['metadata']['name']} does not expose the admin port")
    return tally.passed, tally.failures


def check_kafka_access(docs, config, need):
    """Kafka over TLS, a user per service, and ACLs that let each write only its own events
    and read only with its own group."""
    for k in find(docs, "Kafka"):
        listeners = k["spec"]["kafka"].get("listeners", [])
        need(bool(listeners) and all(l.get("tls") is True and (l.get("authentication") or {}).get("type") == "tls"
                                     for l in listeners),
             "every Kafka listener is TLS with client certificates")
        need((k["spec"]["kafka"].get("authorization") or {}).get("type") == "simple", "Kafka enforces ACLs")
        need("userOperator" in (k["spec"].get("entityOperator") or {}), "Strimzi's user operator issues the users")
    need(config.get("HOUSEBOOK_KAFKA__SECURITY__PROTOCOL") == "ssl", "the services speak TLS to Kafka")
    need(config.get("HOUSEBOOK_KAFKA__CREATE_TOPICS") == "false", "the services create no topics")
    users = {u["metadata"]["name"]: u for u in find(docs, "KafkaUser")}
    for svc in KAFKA_CLIENTS:
        user = users.get(svc)
        need(user is not None, f"{svc} has a KafkaUser")
        if user is None:
            continue
        need((user["spec"].get("authentication") or {}).get("type") == "tls", f"{svc} authenticates by TLS certificate")
        for d in find(docs, "Deployment", svc):
            secrets = {(v.get("secret") or {}).get("secretName") for v in d["spec"]["template"]["spec"].get("volumes", [])}
            need(svc in secrets, f"{svc} mounts its own Kafka identity")
            need(not (secrets & (set(KAFKA_CLIENTS) - {svc})), f"{svc} mounts no other service's Kafka identity")
        acls = (user["spec"].get("authorization") or {}).get("acls", [])
        written, read, groups = set(), set(), []
        for acl in acls:
            r = acl["resource"]
            ops = set(acl.get("operations") or [acl.get("operation")])
            need(r.get("name") not in (None, "*") and r.get("type") in ("topic", "group"),
                 f"{svc}'s ACLs name their topics and groups ({r})")
            need(not ops & {"All", "Create", "Delete", "Alter", "AlterConfigs"}, f"{svc} may not create or change anything ({r})")
            if r.get("type") == "topic":
                need(r.get("patternType", "literal") == "literal", f"{svc}'s topic ACLs are literal ({r['name']})")
                if "Write" in ops:
                    written.add(r["name"])
                if "Read" in ops:
                    read.add(r["name"])
            elif r.get("type") == "group":
                groups.append((r["name"], r.get("patternType", "literal")))
        own = {WRITES[svc]} if svc in WRITES else set()
        if svc in READS:
            own.add(DLQ)
        need(written == own, f"{svc} writes only its own events{' and the DLQ' if svc in READS else ''} ({sorted(written)})")
        need(read == READS.get(svc, set()), f"{svc} reads the topics its consumer handles ({sorted(read)})")
        need(all((n == svc and p == "literal") or (n.startswith(f"{svc}-") and p == "prefix") for n, p in groups),
             f"{svc} reads with its own groups only ({groups})")
        need(bool(groups) == (svc in READS), f"{svc} has a consumer group iff it consumes")


def self_test(path, production_path):
    """Breaks a good rendering in each way the checks guard against; every break must be caught."""
    good = [d for d in yaml.safe_load_all(open(path)) if d]
    _, failures = check(good)
    assert not failures, f"the good manifests fail: {failures}"

    def broken(edit):
        docs = copy.deepcopy(good)
        edit(docs)
        return check(docs)[1]

    def first_service(docs):
        return next(d for d in docs if d.get("kind") == "Deployment" and d["metadata"]["name"] == "book")

    cases = {
        "no readiness probe": lambda ds: first_service(ds)["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe"),
        "no liveness probe": lambda ds: first_service(ds)["spec"]["template"]["spec"]["containers"][0].pop("livenessProbe"),
        "no resources": lambda ds: first_service(ds)["spec"]["template"]["spec"]["containers"][0].pop("resources"),
        "a service of the fleet not deployed": lambda ds: ds.remove(next(d for d in ds if d.get("kind") == "Deployment" and d["metadata"]["name"] == "notification")),
        "no HPA": lambda ds: ds.remove(next(d for d in ds if d.get("kind") == "HorizontalPodAutoscaler" and d["metadata"]["name"] == "book")),
        "no PDB": lambda ds: ds.remove(next(d for d in ds if d.get("kind") == "PodDisruptionBudget" and d["metadata"]["name"] == "book")),
        "maxUnavailable 1": lambda ds: first_service(ds)["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=1),
        "writable root": lambda ds: first_service(ds)["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
        "no gRPC probe": lambda ds: first_service(ds)["spec"]["template"]["spec"]["containers"][0].update(
            readinessProbe={"httpGet": {"path": "/readyz", "port": "http"}}),
        "gRPC port not behind the Service": lambda ds: next(d for d in ds if d.get("kind") == "Service" and d["metadata"]["name"] == "book")
            ["spec"].update(ports=[{"name": "http", "port": 80, "targetPort": "http"}]),
        "no NetworkPolicy for gRPC": lambda ds: ds.remove(next(d for d in ds if d.get("kind") == "NetworkPolicy" and d["metadata"]["name"] == "book-grpc-from-clients")),
        "a custom kind of an unlisted operator": lambda ds: ds.append({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "planted"}}),
        "no trace egress": lambda ds: ds.remove(next(d for d in ds if d.get("kind") == "NetworkPolicy" and d["metadata"]["name"] == "traces-to-collector")),
        "local fetch wait in the cluster": lambda ds: next(d for d in ds if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "housebook-config")
            ["data"].update(HOUSEBOOK_KAFKA__FETCH_WAIT_MS="10"),
        "rejoin workaround in a container": lambda ds: first_service(ds)["spec"]["template"]["spec"]["containers"][0]
            .setdefault("env", []).append({"name": "HOUSEBOOK_KAFKA__REJOIN_UNASSIGNED_MS", "value": "12000"}),
        "one partition": lambda ds: next(d for d in ds if d.get("kind") == "KafkaTopic")["spec"].update(partitions=1),
        "any pod to the gateway's public port": lambda ds: next(d for d in ds if d.get("kind") == "NetworkPolicy" and d["metadata"]["name"] == "gateway")
            ["spec"]["ingress"][0].pop("from"),
        "Ingress to the internal token port": lambda ds: next(d for d in ds if d.get("kind") == "Ingress")
            ["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(name="gateway-internal", port={"name": "internal"}),
        "internal token port on the public Service": lambda ds: next(d for d in ds if d.get("kind") == "Service" and d["metadata"]["name"] == "gateway")
            ["spec"]["ports"].append({"name": "internal", "port": 8089, "targetPort": "internal"}),
        "the gateway continues clients' traces": lambda ds: next(d for d in ds if d.get("kind") == "Deployment" and d["metadata"]["name"] == "gateway")
            ["spec"]["template"]["spec"]["containers"][0].update(env=[e for e in next(
                d for d in ds if d.get("kind") == "Deployment" and d["metadata"]["name"] == "gateway")
                ["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] != "HOUSEBOOK_HTTP__TRUST_TRACE_CONTEXT"]),
        "gRPC reflection on": lambda ds: first_service(ds)["spec"]["template"]["spec"]["containers"][0]
            .setdefault("env", []).append({"name": "HOUSEBOOK_GRPC__REFLECTION", "value": "true"}),
        "payment may write book's events": lambda ds: next(d for d in ds if d.get("kind") == "KafkaUser" and d["metadata"]["name"] == "payment")
            ["spec"]["authorization"]["acls"].append({"resource": {"type": "topic", "name": "housebook.booking.events", "patternType": "literal"},
                                                       "operations": ["Write"]}),
        "book reads with mypage's group": lambda ds: next(d for d in ds if d.get("kind") == "KafkaUser" and d["metadata"]["name"] == "book")
            ["spec"]["authorization"]["acls"].append({"resource": {"type": "group", "name": "mypage", "patternType": "literal"},
                                                       "operations": ["Read"]}),
        "a wildcard topic": lambda ds: next(d for d in ds if d.get("kind") == "KafkaUser" and d["metadata"]["name"] == "house")
            ["spec"]["authorization"]["acls"].append({"resource": {"type": "topic", "name": "housebook.", "patternType": "prefix"},
                                                       "operations": ["Read"]}),
        "no Kafka authorization": lambda ds: next(d for d in ds if d.get("kind") == "Kafka")["spec"]["kafka"].pop("authorization"),
        "a plaintext listener": lambda ds: next(d for d in ds if d.get("kind") == "Kafka")["spec"]["kafka"]["listeners"].append(
            {"name": "plain", "port": 9092, "type": "internal", "tls": False}),
        "no KafkaUser for notification": lambda ds: ds.remove(next(d for d in ds if d.get("kind") == "KafkaUser"
                                                                   and d["metadata"]["name"] == "notification")),
        "services may create topics": lambda ds: next(d for d in ds if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "housebook-config")
            ["data"].update(HOUSEBOOK_KAFKA__CREATE_TOPICS="true"),
        "an image by latest": lambda ds: first_service(ds)["spec"]["template"]["spec"]["containers"][0].update(
            image="housebook/book:latest"),
        "an image with no tag": lambda ds: first_service(ds)["spec"]["template"]["spec"]["containers"][0].update(
            image="housebook/book"),
        "a context's topic missing": lambda ds: ds.remove(next(d for d in ds if d.get("kind") == "KafkaTopic"
                                                               and d["metadata"]["name"] == "housebook.payment.events")),
    }
    missed = [name for name, edit in cases.items() if not broken(edit)]

    prod = [d for d in yaml.safe_load_all(open(production_path)) if d]
    _, failures = check_production(prod)
    assert not failures, f"the good production manifests fail: {failures}"

    def config(docs):
        return next(d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "housebook-config")["data"]

    dev_key = "MCowBQYDK2VwAyEAuO5CA5wwyBxJc1w9hnLDlQ7VG1UmJoWV4GF/jw3R5YM="
    dev_users = open(DEV_SECRET).read().split("gateway.toml: |", 1)[1]
    prod_cases = {
        "dev public key in the ConfigMap": lambda ds: config(ds).update(
            HOUSEBOOK_AUTH__PUBLIC_KEY_PEM=f"-----BEGIN PUBLIC KEY-----\n{dev_key}\n-----END PUBLIC KEY-----\n"),
        "dev users in a Secret, base64": lambda ds: ds.append({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "planted"},
            "data": {"gateway.toml": base64.b64encode(dev_users.encode()).decode()}}),
        "dev client secret in an env value": lambda ds: first_service(ds)["spec"]["template"]["spec"]["containers"][0]
            .setdefault("env", []).append({"name": "HOUSEBOOK_PAYMENT__CLIENT_SECRET", "value": "book-dev-secret"}),
        "dev credentials allowed": lambda ds: config(ds).update(HOUSEBOOK_AUTH__FORBID_DEV_CREDENTIALS="false"),
        "faults enabled": lambda ds: config(ds).update(HOUSEBOOK_FAULTS__ENABLED="true"),
        "no certificate on the ALB": lambda ds: next(d for d in ds if d.get("kind") == "Ingress")["metadata"]["annotations"]
            .pop("alb.ingress.kubernetes.io/certificate-arn"),
        "HTTP not redirected": lambda ds: next(d for d in ds if d.get("kind") == "Ingress")["metadata"]["annotations"]
            .pop("alb.ingress.kubernetes.io/ssl-redirect"),
        "no HSTS": lambda ds: next(d for d in ds if d.get("kind") == "Deployment" and d["metadata"]["name"] == "gateway")
            ["spec"]["template"]["spec"]["containers"][0].update(env=[e for e in next(
                d for d in ds if d.get("kind") == "Deployment" and d["metadata"]["name"] == "gateway")
                ["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] != "HOUSEBOOK_HSTS_MAX_AGE_SECS"]),
        "admin port behind a Service": lambda ds: next(d for d in ds if d.get("kind") == "Service" and d["metadata"]["name"] == "gateway")
            ["spec"]["ports"].append({"name": "admin", "port": 9090, "targetPort": "admin"}),
    }

    def broken_prod(edit):
        docs = copy.deepcopy(prod)
        edit(docs)
        return check_production(docs)[1]

    prod_missed = [name for name, edit in prod_cases.items() if not broken_prod(edit)]
    for name in list(cases) + list(prod_cases):
        print(f"  self-test: {name}: {'MISSED' if name in missed + prod_missed else 'caught'}")
    return len(cases) + len(prod_cases) - len(missed) - len(prod_missed), missed + prod_missed


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--self-test":
        passed, failed = self_test(sys.argv[2], sys.argv[3])
    elif len(sys.argv) in (2, 3) and sys.argv[1:-1] in ([], ["--production"]):
        docs = [d for d in yaml.safe_load_all(open(sys.argv[-1])) if d]
        passed, failed = check(docs)
        if sys.argv[1] == "--production":
            more_passed, more_failed = check_production(docs)
            passed, failed = passed + more_passed, failed + more_failed
        for f in failed:
            print(f"  FAILED: {f}")
    else:
        sys.exit(__doc__)
    print(f"k8s policy {sys.argv[-1]}: {passed} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
