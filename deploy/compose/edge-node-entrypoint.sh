#!/bin/bash
# Entry point of the edgeplane/edge-node image (docs/install.md, "Cloud and edges in
# containers"): a containerd of the node's own (CRI, runc, a CNI bridge), then edgecore with
# the arguments given, driving it. Runs privileged, on the host's network.
#
# Environment:
#   EP_REGISTRY    HOST:PORT of a plain-HTTP registry containerd may pull from (and the pause
#                  image's: EP_REGISTRY/pause:3.9); default 127.0.0.1:5000
#   EP_CNI_BRIDGE  the node's bridge (default ep-node0); nodes on one host need their own
#   EP_CNI_SUBNET  its subnet (default 10.244.90.0/24); likewise
set -euo pipefail
REGISTRY=${EP_REGISTRY:-127.0.0.1:5000}
BRIDGE=${EP_CNI_BRIDGE:-ep-node0}
SUBNET=${EP_CNI_SUBNET:-10.244.90.0/24}
SOCK=/run/containerd/containerd.sock

# cgroup v2: processes may not sit in a cgroup whose controllers are handed down, so this
# container's own processes move to a child first (as kind's nodes do).
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true
  sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers \
    >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
fi

mkdir -p /etc/containerd /etc/containerd/certs.d/"$REGISTRY" /etc/cni/net.d /var/lib/cni
cat >/etc/containerd/config.toml <<TOML
version = 2
[grpc]
  address = "$SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "$REGISTRY/pause:3.9"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
TOML
cat >/etc/containerd/certs.d/"$REGISTRY"/hosts.toml <<TOML
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
TOML
cat >/etc/cni/net.d/10-edgeplane.conflist <<JSON
{"cniVersion": "0.4.0", "name": "edgeplane-$BRIDGE", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
   "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$SUBNET"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON

containerd >/var/log/containerd.log 2>&1 &
for _ in $(seq 1 150); do
  ctr --address "$SOCK" version >/dev/null 2>&1 && break
  sleep 0.2
done
ctr --address "$SOCK" version >/dev/null 2>&1 || {
  echo "edge-node: containerd did not start:" >&2
  tail -20 /var/log/containerd.log >&2
  exit 1
}
exec /usr/bin/edgecore "$@"
