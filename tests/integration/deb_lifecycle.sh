#!/bin/bash
# Runs inside a Debian 12 container (debian_packages_test.cc): installs the packages in
# /debs/v1, runs cloudcore as its unit would and an edgecore that joins it, upgrades to the
# packages in /debs/v2 (the edited configuration, the credentials and the data stay), and
# purges (nothing stays). Prints "deb lifecycle: ok" at the end; any failed check exits 1
# with "FAIL: what".
set -uo pipefail

fail() {
  echo "FAIL: $*"
  for log in /tmp/cloudcore.log /tmp/edgecore.log; do
    [[ -f $log ]] && { echo "---- $log"; tail -20 "$log"; }
  done
  for cmd in "edgectl get nodes" "edgectl get node pkg-node -o yaml"; do
    echo "---- $cmd"
    $cmd 2>&1 | tail -30
  done
  exit 1
}
check() {
  local what=$1
  shift
  "$@" || fail "$what"
}
# wait_for WHAT COMMAND...: polls COMMAND until it succeeds (30 s at most).
wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 300); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "$what"
}
export KUBECONFIG=/var/lib/edgeplane/cloudcore/admin.kubeconfig

start_cloudcore() {
  # What systemd does for the unit: StateDirectory owned by User=, then ExecStart as that user.
  install -d -o cloudcore -g cloudcore -m 0700 /var/lib/edgeplane/cloudcore
  runuser -u cloudcore -- /usr/bin/cloudcore --config /etc/edgeplane/cloudcore.yaml \
    >>/tmp/cloudcore.log 2>&1 &
  CLOUDCORE=$!
  wait_for "cloudcore serves the API" edgectl get nodes
}
start_edgecore() {
  /usr/bin/edgecore --config /etc/edgeplane/edgecore.yaml >>/tmp/edgecore.log 2>&1 &
  EDGECORE=$!
  wait_for "node pkg-node is Ready" node_ready
}
node_ready() {
  [[ $(edgectl get node pkg-node --no-headers | awk '{print $2}') == Ready ]]
}
stop_both() {
  kill "$EDGECORE" "$CLOUDCORE"
  wait "$EDGECORE" "$CLOUDCORE"
}

# ---- install ----
check "dpkg -i v1" dpkg -i /debs/v1/cloudcore_*.deb /debs/v1/edgecore_*.deb /debs/v1/edgectl_*.deb
check "the system user cloudcore exists" getent passwd cloudcore
for unit in cloudcore edgecore; do
  check "$unit.service is installed" test -f "/lib/systemd/system/$unit.service"
  check "$unit.service is enabled" test -L "/etc/systemd/system/multi-user.target.wants/$unit.service"
  check "$unit.yaml is a conffile" \
    sh -c "dpkg-query -W -f '\${Conffiles}' $unit | grep -q /etc/edgeplane/$unit.yaml"
done
check "cloudcore.service runs as cloudcore" grep -qx 'User=cloudcore' /lib/systemd/system/cloudcore.service
check "the binaries run" sh -c 'cloudcore --version && edgecore --version && edgectl --help >/dev/null'

start_cloudcore
check "cloudcore serves the dashboard from the package's files" \
  grep -q 'dashboard: .* from /usr/share/edgeplane/dashboard, at /ui/' /tmp/cloudcore.log
check "admin.kubeconfig is private" test "$(stat -c %a:%U "$KUBECONFIG")" = 600:cloudcore
check "cloudcore writes its store as its own user" \
  test "$(stat -c %U /var/lib/edgeplane/cloudcore/store.db)" = cloudcore
TOKEN=$(edgectl token create --description "package test" | head -1)
# The node's configuration, edited as an operator would.
sed -i -e 's|^cloud: .*|cloud: 127.0.0.1:6444|' \
  -e 's|^runtimeEndpoint: .*|runtimeEndpoint: ""|' \
  -e 's|^# nodeName: .*|nodeName: pkg-node|' \
  -e 's|^  server: tcp://127.0.0.1:1883.*|  server: ""|' /etc/edgeplane/edgecore.yaml
check "edgecore joins" edgecore --config /etc/edgeplane/edgecore.yaml --token "$TOKEN" --join-only
start_edgecore
stop_both

# ---- upgrade ----
check "dpkg -i v2" dpkg -i /debs/v2/cloudcore_*.deb /debs/v2/edgecore_*.deb /debs/v2/edgectl_*.deb
for pkg in cloudcore edgecore edgectl; do
  check "$pkg is upgraded" test "$(dpkg-query -W -f '${Version}' $pkg)" = "$V2"
done
check "the edited edgecore.yaml is kept" grep -qx 'cloud: 127.0.0.1:6444' /etc/edgeplane/edgecore.yaml
check "the node's credentials are kept" test -f /var/lib/edgeplane/edgecore/pki/node.pem
# The same cluster and the same node identity, without a token.
start_cloudcore
start_edgecore
stop_both

# ---- purge ----
check "dpkg --purge" dpkg --purge cloudcore edgecore edgectl
for path in /usr/bin/cloudcore /usr/bin/edgecore /usr/bin/edgectl /etc/edgeplane /usr/share/edgeplane \
  /var/lib/edgeplane /lib/systemd/system/cloudcore.service \
  /etc/systemd/system/multi-user.target.wants/cloudcore.service \
  /etc/systemd/system/multi-user.target.wants/edgecore.service; do
  check "$path is gone after purge" test ! -e "$path"
done
check "the user cloudcore is gone after purge" sh -c '! getent passwd cloudcore'
echo "deb lifecycle: ok"
