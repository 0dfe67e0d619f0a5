#!/usr/bin/env bash
# A private container runtime environment for tests and benchmarks, all of it under one
# directory and on loopback:
#   - containerd (own root, state, socket, runc root; CRI plugin with cgroupfs,
#     restrict_oom_score_adj and a bridge CNI network on a private subnet),
#   - a docker-registry on 127.0.0.1 (plain HTTP) that containerd pulls from,
#   - a second docker-registry set up as Harbor is for app releases: TLS with its own CA
#     (DIR/registry-auth/ca.crt, which containerd's hosts.toml names) and htpasswd
#     authentication (user edgeplane, a random password in DIR/registry-auth/password); pulls
#     need credentials (imagePullSecrets),
#   - three images built here from busybox-static with umoci and pushed with skopeo (no network):
#       pause:3.9     a static process that sleeps until SIGTERM/SIGINT (the sandbox image)
#       busybox:1.36  busybox with its applet links, default cmd sh
#       httpd:1       busybox httpd -f -p 8080 serving /www/index.html ("hello from edgeplane")
#     and, on the authenticated registry, edgeplane/busybox:1.36, edgeplane/httpd:1 and
#     edgeplane/httpd:2 (serving "hello from edgeplane v2").
#
# Usage (as root):
#   scripts/cri-env.sh up DIR     start (or keep) everything; writes DIR/env with
#                                 EP_CRI_ENDPOINT=unix://DIR/containerd.sock and
#                                 EP_REGISTRY=127.0.0.1:PORT, EP_SECURE_REGISTRY=127.0.0.1:SPORT,
#                                 EP_SECURE_REGISTRY_CA, _USER and _PASSWORD
#   scripts/cri-env.sh registries DIR
#                                 only the registries and their images, no containerd (for
#                                 nodes with a containerd of their own: scripts/ci-containers.sh);
#                                 DIR/env as above without EP_CRI_ENDPOINT
#   scripts/cri-env.sh down DIR   stop containers, shims, containerd and the registry; unmount
#                                 what is left under DIR and remove the CNI bridge
#   scripts/cri-env.sh image DIR [--secure] [--env K=V]... NAME:TAG BINARY [SRC:DEST]...
#                                 an image of one program (see fill_program), pushed to the
#                                 plain registry, or with --secure to the authenticated one
# Both are idempotent. Logs: DIR/containerd.log, DIR/registry.log,
# DIR/registry-secure.log.
#
# Environment: EP_REGISTRY_PORT (default 5000), EP_SECURE_REGISTRY_PORT (default 5443),
# EP_CNI_SUBNET (default 10.244.77.0/24), EP_CNI_BRIDGE (default ep-cri0). Two environments
# running at once need different values of all four. containerd 1.6 still puts shim sockets under /run/containerd/s.
set -euo pipefail

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() {
  echo "cri-env: error: $*" >&2
  exit 1
}
log() { echo "cri-env: $*" >&2; }

usage() {
  echo "usage: $0 up|down|registries DIR" >&2
  echo "       $0 image DIR [--secure] [--env K=V]... NAME:TAG BINARY [SRC:DEST]...   (an image" >&2
  echo "                                      of one dynamically linked program, plus files SRC" >&2
  echo "                                      copied to DEST in the image; --secure: to the" >&2
  echo "                                      registry with TLS and authentication)" >&2
  exit 2
}

CMD=${1:-}
IMAGE_FILES=()
IMAGE_ENV=()
IMAGE_SECURE=0
if [[ $CMD == image ]]; then
  [[ $# -ge 4 ]] || usage
  IMAGE_DIR=$2
  shift 2
  while [[ ${1:-} == --* ]]; do
    case $1 in
    --secure) IMAGE_SECURE=1 ;;
    --env)
      [[ ${2:-} == ?*=* ]] || die "image: --env K=V expected, got '${2:-}'"
      IMAGE_ENV+=("$2")
      shift
      ;;
    *) die "image: unknown option $1" ;;
    esac
    shift
  done
  [[ $# -ge 2 ]] || usage
  IMAGE_REF=$1
  IMAGE_BINARY=$2
  IMAGE_FILES=("${@:3}")
  set -- image "$IMAGE_DIR"
fi
[[ $# -eq 2 ]] || usage
[[ $CMD == up || $CMD == down || $CMD == image || $CMD == registries ]] || usage
mkdir -p "$2" 2>/dev/null || die "cannot create $2"
DIR=$(cd "$2" && pwd -P)

PORT=${EP_REGISTRY_PORT:-5000}
SECURE_PORT=${EP_SECURE_REGISTRY_PORT:-5443}
SUBNET=${EP_CNI_SUBNET:-10.244.77.0/24}
BRIDGE=${EP_CNI_BRIDGE:-ep-cri0}
REGISTRY=127.0.0.1:$PORT
SECURE_REGISTRY=127.0.0.1:$SECURE_PORT
AUTH_DIR=$DIR/registry-auth
REGISTRY_USER=edgeplane
SOCK=$DIR/containerd.sock
CRI_NS=k8s.io

[[ $(id -u) -eq 0 ]] || die "must run as root (containerd and runc need it)"
[[ $PORT =~ ^[0-9]+$ ]] || die "EP_REGISTRY_PORT must be a number, got '$PORT'"
[[ $SECURE_PORT =~ ^[0-9]+$ && $SECURE_PORT != "$PORT" ]] ||
  die "EP_SECURE_REGISTRY_PORT must be a number other than EP_REGISTRY_PORT, got '$SECURE_PORT'"

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Waits up to $1 seconds for command "${@:2}" to succeed.
wait_for() {
  local secs=$1
  shift
  local i
  for ((i = 0; i < secs * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# Sends SIGTERM to the pid in file $1, then SIGKILL after $2 seconds.
stop_pidfile() {
  local file=$1 grace=$2 pid i
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

ctr_() { ctr --address "$SOCK" --namespace "$CRI_NS" "$@"; }

# ---------------------------------------------------------------------------------------------
# up

write_containerd_config() {
  mkdir -p "$DIR/root" "$DIR/state" "$DIR/runc" "$DIR/opt" "$DIR/cni" "$DIR/cni-ipam" \
    "$DIR/certs.d/$REGISTRY" "$DIR/certs.d/$SECURE_REGISTRY"
  cat >"$DIR/config.toml" <<EOF
version = 2
root = "$DIR/root"
state = "$DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # root lacks CAP_SYS_RESOURCE on these machines: never lower a score below ours.
  restrict_oom_score_adj = true
  sandbox_image = "$REGISTRY/pause:3.9"
  # A random port: several containerds may run on one machine.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$DIR/certs.d"
EOF
  cat >"$DIR/certs.d/$REGISTRY/hosts.toml" <<EOF
server = "http://$REGISTRY"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve", "push"]
EOF
  # The authenticated registry: containerd trusts its CA for this host only; credentials come
  # with each pull (CRI's AuthConfig, from the pod's imagePullSecrets).
  cat >"$DIR/certs.d/$SECURE_REGISTRY/hosts.toml" <<EOF
server = "https://$SECURE_REGISTRY"

[host."https://$SECURE_REGISTRY"]
  capabilities = ["pull", "resolve"]
  ca = "$AUTH_DIR/ca.crt"
EOF
  # containerd adds the loopback interface itself (with /usr/lib/cni/loopback); the chain
  # configures eth0. No ipMasq: nothing outside this machine is reachable anyway, and no NAT
  # rules are left behind.
  local portmap=""
  if [[ -x /usr/lib/cni/portmap ]]; then
    portmap=',
    {"type": "portmap", "capabilities": {"portMappings": true}}'
  fi
  cat >"$DIR/cni/10-edgeplane.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "edgeplane-$BRIDGE",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$DIR/cni-ipam",
        "ranges": [[{"subnet": "$SUBNET"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }$portmap
  ]
}
EOF
}

# DIR/$1.yml: a docker-registry storing under DIR/$1 and listening on $2; callers may append
# to its http section (the last one).
registry_config() {
  mkdir -p "$DIR/$1"
  cat >"$DIR/$1.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DIR/$1
  delete:
    enabled: true
http:
  addr: $2
EOF
}

start_registry() {
  if pid_alive "$DIR/registry.pid" && curl -sf "http://$REGISTRY/v2/" >/dev/null; then
    return 0
  fi
  stop_pidfile "$DIR/registry.pid" 2
  if curl -s -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null; then
    die "port $PORT already answers (another registry?); set EP_REGISTRY_PORT"
  fi
  registry_config registry "$REGISTRY"
  setsid docker-registry serve "$DIR/registry.yml" >>"$DIR/registry.log" 2>&1 </dev/null &
  echo $! >"$DIR/registry.pid"
  if ! wait_for 20 curl -sf "http://$REGISTRY/v2/"; then
    tail -n 20 "$DIR/registry.log" >&2 || true
    die "docker-registry did not answer on $REGISTRY within 20 s (log: $DIR/registry.log)"
  fi
  log "registry on $REGISTRY"
}

# The authenticated registry's CA, serving certificate and htpasswd file (bcrypt, as
# docker-registry requires), made once and reused by later runs.
make_registry_auth() {
  if [[ -s $AUTH_DIR/tls.crt && -s $AUTH_DIR/htpasswd && -s $AUTH_DIR/password ]]; then
    return 0
  fi
  command -v openssl >/dev/null || die "openssl not found"
  command -v htpasswd >/dev/null || die "htpasswd not found (install apache2-utils)"
  rm -rf "$AUTH_DIR"
  mkdir -p "$AUTH_DIR/certs"
  chmod 0700 "$AUTH_DIR"
  (
    cd "$AUTH_DIR"
    umask 077
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=edgeplane test registry CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out ca.crt 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out tls.key 2>/dev/null
    openssl req -new -key tls.key -subj "/CN=127.0.0.1" -out tls.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >tls.ext
    openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -sha256 \
      -extfile tls.ext -out tls.crt 2>/dev/null
    rm -f tls.csr tls.ext ca.srl
    openssl rand -hex 16 >password
    htpasswd -Bbn "$REGISTRY_USER" "$(cat password)" >htpasswd 2>/dev/null
  ) || die "cannot create the registry's CA, certificate or htpasswd file under $AUTH_DIR"
  chmod 0644 "$AUTH_DIR/ca.crt" "$AUTH_DIR/tls.crt"
  cp "$AUTH_DIR/ca.crt" "$AUTH_DIR/certs/ca.crt"  # skopeo's --cert-dir
}

secure_curl() { curl -s --cacert "$AUTH_DIR/ca.crt" "$@"; }

start_secure_registry() {
  make_registry_auth
  if pid_alive "$DIR/registry-secure.pid" &&
    [[ $(secure_curl -o /dev/null -w '%{http_code}' "https://$SECURE_REGISTRY/v2/") == 401 ]]; then
    return 0
  fi
  stop_pidfile "$DIR/registry-secure.pid" 2
  if (exec 3<>"/dev/tcp/127.0.0.1/$SECURE_PORT") 2>/dev/null; then
    die "port $SECURE_PORT already answers (another registry?); set EP_SECURE_REGISTRY_PORT"
  fi
  registry_config registry-secure "$SECURE_REGISTRY"
  cat >>"$DIR/registry-secure.yml" <<EOF
  tls:
    certificate: $AUTH_DIR/tls.crt
    key: $AUTH_DIR/tls.key
auth:
  htpasswd:
    realm: edgeplane-registry
    path: $AUTH_DIR/htpasswd
EOF
  setsid docker-registry serve "$DIR/registry-secure.yml" >>"$DIR/registry-secure.log" 2>&1 </dev/null &
  echo $! >"$DIR/registry-secure.pid"
  if ! wait_for 20 secure_curl -f -u "$(secure_creds)" "https://$SECURE_REGISTRY/v2/"; then
    tail -n 20 "$DIR/registry-secure.log" >&2 || true
    die "the authenticated docker-registry did not answer on $SECURE_REGISTRY within 20 s (log: $DIR/registry-secure.log)"
  fi
  log "registry with TLS and htpasswd on $SECURE_REGISTRY"
}

start_containerd() {
  if pid_alive "$DIR/containerd.pid" && ctr --address "$SOCK" version >/dev/null 2>&1; then
    return 0
  fi
  stop_pidfile "$DIR/containerd.pid" 10
  rm -f "$SOCK" "$SOCK.ttrpc"
  local before
  before=$(cri_started_count)
  setsid containerd --config "$DIR/config.toml" >>"$DIR/containerd.log" 2>&1 </dev/null &
  echo $! >"$DIR/containerd.pid"
  if ! wait_for 30 ctr --address "$SOCK" version; then
    tail -n 30 "$DIR/containerd.log" >&2 || true
    die "containerd did not answer on $SOCK within 30 s (log: $DIR/containerd.log)"
  fi
  # ctr answers before the CRI service has recovered its state ("server is not initialized
  # yet"); the streaming server is the last thing it starts. Clients should still retry
  # briefly: the service flips to ready just after logging this.
  if ! wait_for 30 cri_started_since "$before"; then
    tail -n 30 "$DIR/containerd.log" >&2 || true
    die "containerd's CRI plugin did not start within 30 s (log: $DIR/containerd.log)"
  fi
  log "containerd on $SOCK"
}

cri_started_count() {
  local n
  n=$(grep -c 'Start streaming server' "$DIR/containerd.log" 2>/dev/null) || true
  echo "${n:-0}"
}
cri_started_since() { (($(cri_started_count) > $1)); }

in_registry() {
  skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/$1" >/dev/null 2>&1
}
secure_creds() { echo "$REGISTRY_USER:$(cat "$AUTH_DIR/password")"; }
in_secure_registry() {
  skopeo inspect --raw --cert-dir "$AUTH_DIR/certs" --creds "$(secure_creds)" \
    "docker://$SECURE_REGISTRY/$1" >/dev/null 2>&1
}

# Builds the tiny static pause binary (C, no libc dependencies at run time).
build_pause_binary() {
  local out=$1 src
  command -v cc >/dev/null || die "a C compiler (cc) is needed to build the pause image"
  src=$(mktemp --suffix=.c)
  cat >"$src" <<'EOF'
#include <signal.h>
#include <unistd.h>

static void onSignal(int sig) { _exit(0); }

int main(void) {
  signal(SIGTERM, onSignal);
  signal(SIGINT, onSignal);
  for (;;) pause();
}
EOF
  cc -static -Os -o "$out" "$src" || {
    rm -f "$src"
    die "cannot build the pause binary (static glibc missing?)"
  }
  rm -f "$src"
  strip "$out" 2>/dev/null || true
}

# Fills rootfs $1 with busybox, its applet links and the files a minimal image needs.
fill_busybox_rootfs() {
  local root=$1 applet
  local bb
  bb=$(command -v busybox) || die "busybox not found (install busybox-static)"
  # ldd fails on static binaries; a dynamic busybox would not run inside the image.
  ldd "$bb" >/dev/null 2>&1 && die "$bb is dynamically linked; install busybox-static"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,var/www}
  chmod 1777 "$root/tmp"
  cp "$bb" "$root/bin/busybox"
  for applet in $("$bb" --list); do
    [[ $applet == busybox ]] && continue
    [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/:/bin/false' >>"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

# umoci: $1 tag in the OCI layout; the rest is a function that fills the rootfs ($bundle/rootfs).
oci_layer() {
  local tag=$1 fill=$2 bundle=$DIR/images/bundle-$1
  rm -rf "$bundle"
  umoci unpack --image "$LAYOUT:$tag" "$bundle" >/dev/null
  "$fill" "$bundle/rootfs"
  umoci repack --image "$LAYOUT:$tag" "$bundle" >/dev/null
  rm -rf "$bundle"
}

fill_pause() { build_pause_binary "$1/pause"; }
fill_www() {
  mkdir -p "$1/www"
  echo "hello from edgeplane" >"$1/www/index.html"
}
fill_www_v2() { echo "hello from edgeplane v2" >"$1/www/index.html"; }

# A fresh, empty image under tag $1 (dropping a half-built one from an earlier run).
new_image() {
  umoci rm --image "$LAYOUT:$1" >/dev/null 2>&1 || true
  umoci new --image "$LAYOUT:$1"
}

push() {
  skopeo copy --quiet --dest-tls-verify=false "oci:$LAYOUT:$1" "docker://$REGISTRY/$2" ||
    die "skopeo could not push $2 to $REGISTRY"
  log "pushed $REGISTRY/$2"
}
push_secure() {
  skopeo copy --quiet --dest-cert-dir "$AUTH_DIR/certs" --dest-creds "$(secure_creds)" \
    "oci:$LAYOUT:$1" "docker://$SECURE_REGISTRY/$2" ||
    die "skopeo could not push $2 to $SECURE_REGISTRY"
  log "pushed $SECURE_REGISTRY/$2"
}

build_images() {
  LAYOUT=$DIR/images/layout
  local need=0
  in_registry pause:3.9 || need=1
  in_registry busybox:1.36 || need=1
  in_registry httpd:1 || need=1
  in_secure_registry edgeplane/httpd:2 || need=1
  ((need)) || return 0
  command -v umoci >/dev/null || die "umoci not found"
  command -v skopeo >/dev/null || die "skopeo not found"
  [[ -d $LAYOUT ]] || umoci init --layout "$LAYOUT"

  if ! in_registry pause:3.9; then
    new_image pause
    oci_layer pause fill_pause
    umoci config --image "$LAYOUT:pause" --clear=config.entrypoint --clear=config.cmd \
      --config.entrypoint /pause
    push pause pause:3.9
  fi
  if ! in_registry busybox:1.36 || ! in_registry httpd:1 || ! in_secure_registry edgeplane/httpd:2; then
    new_image busybox
    oci_layer busybox fill_busybox_rootfs
    umoci config --image "$LAYOUT:busybox" --clear=config.cmd --clear=config.env \
      --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin --config.cmd sh
    push busybox busybox:1.36
    push_secure busybox edgeplane/busybox:1.36
    umoci config --image "$LAYOUT:busybox" --tag httpd --clear=config.cmd \
      --config.cmd /bin/httpd --config.cmd -f --config.cmd -p --config.cmd 8080 \
      --config.cmd -h --config.cmd /www --config.exposedports 8080/tcp
    umoci rm --image "$LAYOUT:busybox" >/dev/null 2>&1 || true
    oci_layer httpd fill_www
    push httpd httpd:1
    push_secure httpd edgeplane/httpd:1
    oci_layer httpd fill_www_v2
    push_secure httpd edgeplane/httpd:2
  fi
}

# An image holding one program (at /usr/local/bin/NAME, its entrypoint) and the shared
# libraries it loads, pushed as NAME:TAG to this environment's registry.
fill_program() {
  local root=$1 lib
  mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/etc"
  chmod 1777 "$root/tmp"
  cp "$IMAGE_BINARY" "$root/usr/local/bin/${IMAGE_NAME}"
  while read -r lib; do
    [[ -f $lib ]] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done < <(ldd "$IMAGE_BINARY" | grep -o '/[^ ]*')
  echo 'root:x:0:0:root:/root:/bin/false' >"$root/etc/passwd"
  local spec
  for spec in "${IMAGE_FILES[@]}"; do
    [[ $spec == *:/* && -f ${spec%%:*} ]] || die "image: SRC:DEST with an existing file and an absolute DEST expected, got $spec"
    mkdir -p "$root$(dirname "${spec#*:}")"
    cp -L "${spec%%:*}" "$root${spec#*:}"
  done
}

image() {
  [[ -x $IMAGE_BINARY ]] || die "image: $IMAGE_BINARY is not an executable"
  [[ $IMAGE_REF == *:* ]] || die "image: NAME:TAG expected, got $IMAGE_REF"
  IMAGE_NAME=${IMAGE_REF%%:*}
  IMAGE_NAME=${IMAGE_NAME##*/}
  LAYOUT=$DIR/images/layout
  mkdir -p "$DIR/images"
  [[ -d $LAYOUT ]] || umoci init --layout "$LAYOUT"
  new_image "$IMAGE_NAME"
  oci_layer "$IMAGE_NAME" fill_program
  local envs=() e
  for e in "${IMAGE_ENV[@]}"; do envs+=(--config.env "$e"); done
  umoci config --image "$LAYOUT:$IMAGE_NAME" --clear=config.cmd \
    --config.entrypoint "/usr/local/bin/$IMAGE_NAME" "${envs[@]}" >/dev/null
  if ((IMAGE_SECURE)); then
    [[ -s $AUTH_DIR/password ]] || die "image --secure: run '$0 up $DIR' first"
    push_secure "$IMAGE_NAME" "$IMAGE_REF"
  else
    push "$IMAGE_NAME" "$IMAGE_REF"
  fi
}

registries() {
  local tool
  for tool in docker-registry skopeo umoci busybox curl openssl htpasswd; do
    command -v "$tool" >/dev/null ||
      die "$tool not found; run scripts/install-deps.sh (docker-registry skopeo umoci busybox-static apache2-utils)"
  done
  write_containerd_config  # the directories the registries' set-up uses
  start_registry
  start_secure_registry
  build_images
  cat >"$DIR/env" <<EOF
EP_REGISTRY=$REGISTRY
EP_SECURE_REGISTRY=$SECURE_REGISTRY
EP_SECURE_REGISTRY_CA=$AUTH_DIR/ca.crt
EOF
  log "registries: $REGISTRY (plain HTTP), $SECURE_REGISTRY (TLS, htpasswd)"
}

up() {
  local tool
  for tool in containerd ctr runc containerd-shim-runc-v2 docker-registry skopeo umoci busybox curl openssl htpasswd; do
    command -v "$tool" >/dev/null ||
      die "$tool not found; run scripts/install-deps.sh (containerd runc docker-registry skopeo umoci busybox-static apache2-utils)"
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
    die "CNI plugins missing in /usr/lib/cni (install containernetworking-plugins)"
  write_containerd_config
  start_registry
  start_secure_registry
  build_images
  start_containerd
  cat >"$DIR/env" <<EOF
EP_CRI_ENDPOINT=unix://$SOCK
EP_REGISTRY=$REGISTRY
EP_SECURE_REGISTRY=$SECURE_REGISTRY
EP_SECURE_REGISTRY_CA=$AUTH_DIR/ca.crt
EP_SECURE_REGISTRY_USER=$REGISTRY_USER
EP_SECURE_REGISTRY_PASSWORD=$(cat "$AUTH_DIR/password")
EOF
  chmod 0600 "$DIR/env"
  log "ready: $(tr '\n' ' ' <"$DIR/env")"
}

# ---------------------------------------------------------------------------------------------
# down

# Network namespaces the CRI plugin created for this containerd's sandboxes: those named in
# the sandbox specs (needs containerd) and those whose eth0 address host-local allocated from
# this environment's IP pool (works after containerd died).
sandbox_netns() {
  local id ns addr
  if [[ -S $SOCK ]]; then
    for id in $(ctr_ containers list --quiet 2>/dev/null); do
      ctr_ containers info "$id" 2>/dev/null |
        grep -o '"/var/run/netns/cni-[0-9a-f-]*"' | tr -d '"' || true
    done
  fi
  for ns in /var/run/netns/cni-*; do
    [[ -e $ns ]] || continue
    addr=$(ip -n "${ns##*/}" -4 -o addr show dev eth0 2>/dev/null | awk '{ print $4 }') || true
    addr=${addr%%/*}
    if [[ -n $addr ]] && compgen -G "$DIR/cni-ipam/*/$addr" >/dev/null; then echo "$ns"; fi
  done
}

# The hostPort DNAT rules the portmap plugin made for this network's sandboxes: CNI DEL never
# runs for sandboxes removed here, and a leaked rule would divert later connections to that
# loopback port (tests pick hostPorts like any other free port).
remove_portmaps() {
  command -v iptables >/dev/null || return 0
  local rule chain
  while read -r rule; do
    chain=$(sed -n 's/.* -j \(CNI-DN-[0-9a-f]*\).*/\1/p' <<<"$rule")
    eval "iptables -t nat ${rule/-A /-D }" 2>/dev/null || true
    if [[ -n $chain ]]; then
      iptables -t nat -F "$chain" 2>/dev/null || true
      iptables -t nat -X "$chain" 2>/dev/null || true
    fi
  done < <(iptables -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null |
    grep -F "dnat name: \\\"edgeplane-$BRIDGE\\\"")
}

down() {
  local id pid netns=() m
  mapfile -t netns < <(sandbox_netns | sort -u)
  if [[ -f $DIR/containerd.pid ]] && pid_alive "$DIR/containerd.pid" && [[ -S $SOCK ]]; then
    # Kill every task (containers and sandboxes), then delete tasks and containers so the
    # shims exit.
    for id in $(ctr_ tasks list --quiet 2>/dev/null); do
      ctr_ tasks kill --all --signal SIGKILL "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr_ tasks list --quiet 2>/dev/null); do
      ctr_ tasks delete --force "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr_ containers list --quiet 2>/dev/null); do
      ctr_ containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_pidfile "$DIR/containerd.pid" 10

  # Anything still running under this runc root (containerd died before cleaning up).
  if [[ -d $DIR/runc ]]; then
    local root
    for root in "$DIR"/runc/*; do
      [[ -d $root ]] || continue
      for id in $(runc --root "$root" list --quiet 2>/dev/null); do
        runc --root "$root" kill "$id" KILL >/dev/null 2>&1 || true
        runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
      done
    done
  fi
  # Shims started for this containerd (matched by its exact socket path), and their sockets,
  # which containerd 1.6 keeps under /run/containerd/s whatever its own state dir.
  local cmdline
  for pid in /proc/[0-9]*; do
    cmdline=$(tr '\0' ' ' <"$pid/cmdline" 2>/dev/null) || continue
    if [[ $cmdline == *containerd-shim* && $cmdline == *"-address $SOCK "* ]]; then
      kill -KILL "${pid#/proc/}" 2>/dev/null || true
    fi
  done
  local addr
  for addr in "$DIR"/state/io.containerd.runtime.v2.task/*/*/address; do
    [[ -f $addr ]] || continue
    m=$(cat "$addr")
    m=${m#unix://}
    [[ $m == /run/containerd/s/* ]] && rm -f "$m"
  done

  for m in "${netns[@]}"; do
    umount "$m" 2>/dev/null || true
    rm -f "$m"
  done
  # The addresses and hostPort rules of the sandboxes just removed (CNI DEL never ran for them).
  rm -f "$DIR"/cni-ipam/*/[0-9]*
  remove_portmaps
  # Mounts left under DIR (rootfs overlays, sandbox shm), deepest first.
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)

  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE" 2>/dev/null || log "could not delete bridge $BRIDGE"
  fi
  stop_pidfile "$DIR/registry.pid" 5
  stop_pidfile "$DIR/registry-secure.pid" 5
  rm -f "$SOCK" "$SOCK.ttrpc" "$DIR/env"
  log "down: $DIR"
}

"$CMD"
