#!/usr/bin/env bash
# One command brings the system up on this machine: installs dependencies, builds, starts a
# private containerd with a local image registry (scripts/cri-env.sh, as root), cloudcore on its
# embedded SQLite store, and one edgecore (node edge-node-1) running pods on that containerd;
# applies the sample app (a Deployment of 2 HTTP servers, a pod, device definitions), waits for
# the pods to run, and shows them in the cloud, at the edge and in containerd.
#   EP_RUN_DIR (default ./run)  EP_API_PORT (6443)  EP_TUNNEL_PORT (6444)  EP_EDGE_API_PORT (10550)
#   EP_REGISTRY_PORT (5000)  EP_SECURE_REGISTRY_PORT (5443)  EP_MQTT_PORT (1883)
#   EP_ROUTER_PORT (9443)
# Stop it with scripts/down.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN=${EP_RUN_DIR:-$ROOT/run}
PORT=${EP_API_PORT:-6443}
TUNNEL_PORT=${EP_TUNNEL_PORT:-6444}
EDGE_PORT=${EP_EDGE_API_PORT:-10550}
MQTT_PORT=${EP_MQTT_PORT:-1883}
ROUTER_PORT=${EP_ROUTER_PORT:-9443}
bash scripts/install-deps.sh
bash scripts/build.sh
mkdir -p "$RUN"
SERVER="https://127.0.0.1:$PORT"
KUBECONFIG_FILE="$RUN/cloudcore/admin.kubeconfig"  # written by cloudcore on first start

# Bearer tokens for the dashboard's login (docs/dashboard.md), made once: a cluster-admin one and
# a read-only one (user "viewer", bound to the view ClusterRole below). Kubernetes' static token
# file format; the files are 0600.
if [[ ! -f "$RUN/tokens.csv" ]]; then
  (
    umask 077
    admin_token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    view_token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    printf '%s,admin,admin-uid,"system:masters"\n%s,viewer,viewer-uid,""\n' "$admin_token" "$view_token" >"$RUN/tokens.csv"
    echo "$admin_token" >"$RUN/dashboard-admin.token"
    echo "$view_token" >"$RUN/dashboard-viewer.token"
  )
fi

if [[ -f "$RUN/cloudcore.pid" ]] && kill -0 "$(cat "$RUN/cloudcore.pid")" 2>/dev/null; then
  echo "up: cloudcore already running (pid $(cat "$RUN/cloudcore.pid"))"
else
  nohup "$ROOT/build/cloudcore/cloudcore" --data-dir "$RUN/cloudcore" \
    --api-listen "127.0.0.1:$PORT" --tunnel-listen "127.0.0.1:$TUNNEL_PORT" \
    --router-listen "127.0.0.1:$ROUTER_PORT" --token-auth-file "$RUN/tokens.csv" \
    >"$RUN/cloudcore.log" 2>&1 &
  echo $! >"$RUN/cloudcore.pid"
  for _ in $(seq 1 100); do
    curl -kfsS "$SERVER/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -kfsS "$SERVER/readyz" >/dev/null || { echo "up: cloudcore did not start:"; tail -20 "$RUN/cloudcore.log"; exit 1; }
  echo "up: cloudcore ready at $SERVER (pid $(cat "$RUN/cloudcore.pid"), log $RUN/cloudcore.log)"
fi

# The container runtime edged drives: containerd + runc + CNI, images from a local registry.
# The sample mapper's image is built from this build's binary and pushed there.
RUNTIME_ENDPOINT=""
DMI_SOCKET=/etc/kubeedge/dmi.sock  # KubeEdge's path; the mapper pod mounts /etc/kubeedge
if [[ $(id -u) -eq 0 ]]; then
  bash scripts/cri-env.sh up "$RUN/cri"
  RUNTIME_ENDPOINT="unix://$RUN/cri/containerd.sock"
  bash scripts/cri-env.sh image "$RUN/cri" ep-thermometer-mapper:0.1 "$ROOT/build/mappers/ep-thermometer-mapper"
  # The example edge AI app (examples/digits-classifier) with its held-out digits, once trained.
  CLASSIFIER="$ROOT/build/examples/digits-classifier"
  if [[ -x $CLASSIFIER ]] && /usr/bin/python3 -c 'import torch, torchvision, sklearn' 2>/dev/null; then
    if [[ ! -f $RUN/digits/v2.onnx ]]; then
      echo "up: training the example app's model (MobileNetV2 on scikit-learn's digits, about 2 minutes) ..."
      /usr/bin/python3 examples/digits-classifier/train.py --out "$RUN/digits" 2>&1 | grep -E '^v[12]:' || true
    fi
    # Two releases of the app's image on the registry with TLS and authentication (Harbor's
    # role here): 1.0 is deployed first, 1.1 is the upgrade shown below.
    if [[ -f $RUN/digits/v2.onnx ]]; then
      for v in 1.0 1.1; do
        bash scripts/cri-env.sh image "$RUN/cri" --secure --env "APP_VERSION=$v" \
          "edgeplane/digits-classifier:$v" "$CLASSIFIER" "$RUN/digits/heldout.csv:/app/heldout.csv"
      done
    fi
  fi
else
  echo "up: not root: containerd cannot run here, so edgecore will cache pods but not run them" >&2
  DMI_SOCKET=$RUN/dmi.sock
fi

# The MQTT broker devices talk to the device twin through (KubeEdge's topics).
if (exec 3<>"/dev/tcp/127.0.0.1/$MQTT_PORT") 2>/dev/null; then
  echo "up: an MQTT broker already listens on 127.0.0.1:$MQTT_PORT; edgecore uses it"
else
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQTT_PORT" >"$RUN/mosquitto.conf"
  nohup mosquitto -c "$RUN/mosquitto.conf" >"$RUN/mosquitto.log" 2>&1 &
  echo $! >"$RUN/mosquitto.pid"
  echo "up: mosquitto on 127.0.0.1:$MQTT_PORT (pid $(cat "$RUN/mosquitto.pid"), log $RUN/mosquitto.log)"
fi

EDGECTL="$ROOT/build/edgectl/edgectl --kubeconfig $KUBECONFIG_FILE"
if [[ -f "$RUN/edgecore.pid" ]] && kill -0 "$(cat "$RUN/edgecore.pid")" 2>/dev/null; then
  echo "up: edgecore already running (pid $(cat "$RUN/edgecore.pid"))"
else
  # The node joins once with a single-use token; later starts use its stored certificate.
  JOIN=()
  if [[ ! -f "$RUN/edgecore/pki/node.pem" ]]; then
    TOKEN=$($EDGECTL token create --ttl 10m --usages 1 --description "scripts/up.sh edge-node-1")
    JOIN=(--token "$TOKEN")
  fi
  nohup "$ROOT/build/edgecore/edgecore" --node-name edge-node-1 \
    --cloud "127.0.0.1:$TUNNEL_PORT" --data-dir "$RUN/edgecore" \
    --local-api-listen "127.0.0.1:$EDGE_PORT" --runtime-endpoint "$RUNTIME_ENDPOINT" \
    --mqtt-server "tcp://127.0.0.1:$MQTT_PORT" --dmi-socket "$DMI_SOCKET" \
    "${JOIN[@]}" >"$RUN/edgecore.log" 2>&1 &
  echo $! >"$RUN/edgecore.pid"
  echo "up: edgecore edge-node-1 started (pid $(cat "$RUN/edgecore.pid"), log $RUN/edgecore.log)"
fi

for _ in $(seq 1 100); do
  $EDGECTL get nodes edge-node-1 --no-headers 2>/dev/null | grep -q ' Ready ' && break
  sleep 0.2
done
$EDGECTL get nodes -o wide
echo
$EDGECTL apply -f deploy/samples/
# The dashboard's read-only user (tokens.csv above).
$EDGECTL apply -f - <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: dashboard-viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: viewer}]
YAML
echo
if [[ -n $RUNTIME_ENDPOINT ]]; then
  echo "up: waiting for the sample pods to run ..."
  for _ in $(seq 1 150); do
    running=$($EDGECTL get pods --no-headers 2>/dev/null | grep -c ' Running ' || true)
    [[ $running -ge 3 ]] && break
    sleep 0.4
  done
  $EDGECTL rollout status deployment/hello --timeout 60s || true
fi
$EDGECTL get deployments,replicasets,pods,configmaps -o wide
echo
if [[ -n $RUNTIME_ENDPOINT ]]; then
  echo "up: containers in containerd (ctr -n k8s.io --address $RUN/cri/containerd.sock tasks ls):"
  ctr --address "$RUN/cri/containerd.sock" -n k8s.io tasks ls
  # The pod IP is read again on each try: after a restart of the harness's containerd the pods
  # get new sandboxes, and the cloud learns their new IPs a moment later.
  answer='' ip=''
  for _ in $(seq 1 15); do
    ip=$($EDGECTL get pods -l app=hello -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["status"].get("podIP",""))' 2>/dev/null || true)
    [[ -n $ip ]] && answer=$(curl -fsS --max-time 1 "http://$ip:8080/" 2>/dev/null) && break
    sleep 1
  done
  if [[ -n $ip ]]; then
    echo "up: the sample app answers on its pod IP: curl http://$ip:8080/ -> ${answer:-(no answer yet)}"
  fi
  echo "up: logs of hello-edge: $($EDGECTL logs hello-edge --tail 1 2>&1 || true)"
  echo
fi
# Without containerd the sample mapper runs as a plain process.
if [[ -z $RUNTIME_ENDPOINT ]] && ! { [[ -f "$RUN/mapper.pid" ]] && kill -0 "$(cat "$RUN/mapper.pid")" 2>/dev/null; }; then
  nohup "$ROOT/build/mappers/ep-thermometer-mapper" --dmi-socket "$DMI_SOCKET" \
    --socket "$RUN/simthermo.sock" >"$RUN/mapper.log" 2>&1 &
  echo $! >"$RUN/mapper.pid"
fi
echo "up: waiting for thermometer-1's first readings (sample mapper -> DMI -> twin -> cloud) ..."
for _ in $(seq 1 60); do
  $EDGECTL get device thermometer-1 -o json 2>/dev/null | grep -q '"reported"' && break
  sleep 0.5
done
$EDGECTL get devicemodels
$EDGECTL get devices -o wide
echo "up: thermometer-1's temperature series in the cloud (reportToCloud):"
for _ in $(seq 1 20); do
  [[ -n $($EDGECTL data thermometer-1 --no-headers 2>/dev/null) ]] && break
  sleep 0.5
done
$EDGECTL data thermometer-1 --limit 5
echo
# Rules (docs/rules.md, deploy/samples/rules.yaml applied above): a REST call to the cloud's
# router reaches edge-node-1's broker.
python3 - "$KUBECONFIG_FILE" "$RUN" <<'PY'
import base64, os, re, sys
text = open(sys.argv[1]).read()
field = lambda key: re.search(r"^\s*" + key + r":\s*(\S+)\s*$", text, re.M).group(1)
for name, key in (("admin.crt", "client-certificate-data"), ("admin.key", "client-key-data"),
                  ("ca.crt", "certificate-authority-data")):
    data = field(key)
    path = os.path.join(sys.argv[2], name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(base64.b64decode(data))
PY
ROUTER_CURL=(curl -sS --cacert "$RUN/ca.crt" --cert "$RUN/admin.crt" --key "$RUN/admin.key")
rm -f "$RUN/alert.txt"
timeout 20 mosquitto_sub -p "$MQTT_PORT" -t alerts -C 1 >"$RUN/alert.txt" 2>/dev/null &
for _ in $(seq 1 40); do
  answer=$("${ROUTER_CURL[@]}" -X POST -d '{"alert":"door open"}' \
    "https://127.0.0.1:$ROUTER_PORT/edge-node-1/default/alerts" 2>&1 || true)
  [[ -s "$RUN/alert.txt" ]] && break
  sleep 0.5
done
echo "up: POST https://127.0.0.1:$ROUTER_PORT/edge-node-1/default/alerts -> $answer"
echo "up: received on edge-node-1's broker, topic alerts: $(cat "$RUN/alert.txt" 2>/dev/null)"
$EDGECTL get rules
echo

# Edge AI (docs/models.md, examples/digits-classifier): the model's v1 pushed to the cloud and
# delivered to the node, the classifier answering, then v2 and a rollback reaching the same pod.
if [[ -n $RUNTIME_ENDPOINT && -f $RUN/digits/v2.onnx ]]; then
  # shellcheck disable=SC1091
  source "$RUN/cri/env"
  # The pull secret for the authenticated registry (kubectl's idiom: create or update).
  $EDGECTL create secret docker-registry regcred --docker-server "$EP_SECURE_REGISTRY" \
    --docker-username "$EP_SECURE_REGISTRY_USER" --docker-password "$EP_SECURE_REGISTRY_PASSWORD" \
    --dry-run=client -o yaml | $EDGECTL apply -f -
  $EDGECTL model push digits "$RUN/digits/v1.onnx" --version v1
  $EDGECTL apply -f deploy/examples/digits-classifier.yaml
  $EDGECTL rollout status deployment/digits-classifier --timeout 120s || true
  CLF_IP=""
  # The IP of a ready classifier pod (the newest one during an upgrade).
  classifier_ip() {
    $EDGECTL get pods -l app=digits-classifier -o json | python3 -c '
import json, sys
pods = [p for p in json.load(sys.stdin)["items"] if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
pods.sort(key=lambda p: p["metadata"]["creationTimestamp"])
print(pods[-1]["status"].get("podIP", "") if pods else "")' 2>/dev/null || true
  }
  for _ in $(seq 1 100); do
    CLF_IP=$(classifier_ip)
    [[ -n $CLF_IP ]] && curl -fsS --max-time 1 "http://$CLF_IP:8080/readyz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  app_version() { curl -fsS --max-time 2 "http://$CLF_IP:8080/version" 2>/dev/null || true; }
  echo "up: the app (image $EP_SECURE_REGISTRY/edgeplane/digits-classifier:1.0, pulled with imagePullSecrets regcred): $(app_version)"
  model_version() { curl -fsS --max-time 2 "http://$CLF_IP:8080/v1/model" 2>/dev/null | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["version"], m.get("heldoutAccuracy"))' 2>/dev/null || true; }
  echo "up: curl --data-binary @$RUN/digits/samples/digit-7.png http://$CLF_IP:8080/v1/classify ->"
  echo "    $(curl -fsS --max-time 5 --data-binary @"$RUN/digits/samples/digit-7.png" "http://$CLF_IP:8080/v1/classify" 2>&1)"
  echo "up: GET /v1/model -> version and held-out accuracy: $(model_version)"
  PUSHED_AT=$(date +%s%N)
  $EDGECTL model push digits "$RUN/digits/v2.onnx" --version v2
  SERVED=""
  for _ in $(seq 1 600); do
    [[ $(model_version) == v2* ]] && SERVED="$((($(date +%s%N) - PUSHED_AT) / 1000000)) ms after the push began" && break
    sleep 0.05
  done
  echo "up: after the push, the same pod serves: $(model_version) (${SERVED:-v2 not served within the wait})"
  echo "up: digit-7.png again, classified by v2 -> $(curl -fsS --max-time 5 --data-binary @"$RUN/digits/samples/digit-7.png" "http://$CLF_IP:8080/v1/classify?k=1" 2>&1)"
  $EDGECTL model rollback digits
  for _ in $(seq 1 60); do [[ $(model_version) == v1* ]] && break; sleep 0.5; done
  echo "up: after the rollback: $(model_version)"
  $EDGECTL model history digits
  # An app release: the Deployment moves to the image's next version, rolled out as usual; the
  # new pod mounts the same model.
  $EDGECTL set image deployment/digits-classifier "classifier=$EP_SECURE_REGISTRY/edgeplane/digits-classifier:1.1"
  $EDGECTL rollout status deployment/digits-classifier --timeout 120s || true
  for _ in $(seq 1 60); do
    CLF_IP=$(classifier_ip)
    [[ $(app_version) == *'"1.1"'* ]] && break
    sleep 0.5
  done
  echo "up: after the image upgrade: $(app_version), model $(model_version)"
  $EDGECTL get pods -l app=digits-classifier
  echo
fi
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$EDGE_PORT/api/v1/namespaces/default/pods/hello-edge" >/dev/null 2>&1 && break
  sleep 0.2
done
echo "up: at the edge (local API http://127.0.0.1:$EDGE_PORT, served from edge-node-1's cache):"
curl -fsS "http://127.0.0.1:$EDGE_PORT/api/v1/namespaces/default/pods" |
  python3 -c 'import json,sys; [print("  pod", p["metadata"]["name"], "rv", p["metadata"]["resourceVersion"]) for p in json.load(sys.stdin)["items"]]'
curl -fsS "http://127.0.0.1:$EDGE_PORT/api/v1/namespaces/default/configmaps" |
  python3 -c 'import json,sys; [print("  configmap", c["metadata"]["name"]) for c in json.load(sys.stdin)["items"]]'
echo
echo "up: the API is $SERVER (HTTPS, client certificates and tokens); cluster-admin kubeconfig:"
echo "          export KUBECONFIG=$KUBECONFIG_FILE"
echo "up: the dashboard is $SERVER/ui/ (the cluster's own CA: $RUN/ca.crt); sign in with the token in"
echo "          $RUN/dashboard-admin.token (cluster-admin) or $RUN/dashboard-viewer.token (read-only)"
echo "up: try:  build/edgectl/edgectl get all; build/edgectl/edgectl get devices -o wide"
echo "          build/edgectl/edgectl model push digits $RUN/digits/v2.onnx --version v2; build/edgectl/edgectl model history digits   (docs/models.md)"
echo "          build/edgectl/edgectl data thermometer-1 --since 10m -o csv   (device data kept in the cloud)"
echo "          mosquitto_sub -p $MQTT_PORT -v -t '\$hw/events/#'   (KubeEdge's device topics, docs/devices.md)"
echo "          curl --cacert $RUN/ca.crt --cert $RUN/admin.crt --key $RUN/admin.key -d '{\"alert\":1}' https://127.0.0.1:$ROUTER_PORT/edge-node-1/default/alerts   (rules, docs/rules.md)"
echo "          build/edgectl/edgectl scale deployment/hello --replicas 3; build/edgectl/edgectl exec hello-edge -- ls /"
echo "    or:   kubectl get deploy"
