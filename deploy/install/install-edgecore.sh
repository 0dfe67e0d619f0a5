#!/usr/bin/env bash
# Installs edgecore on this machine and joins the cluster, in one command (what `keadm join`
# does for KubeEdge):
#
#   install-edgecore.sh --cloud HOST:PORT --token TOKEN --node-name NAME [options]
#   install-edgecore.sh --uninstall [--root DIR]
#
#   --cloud HOST:PORT[,HOST:PORT]  cloudcore's tunnel (every replica's address)
#   --token TOKEN                  join token from `edgectl token create` (used once; not kept)
#   --node-name NAME               the Node's name (default: the host name, lower-cased)
#   --binary FILE                  the edgecore binary to install (default: ./edgecore beside this
#                                  script, then the build tree's, then edgecore on PATH)
#   --runtime-endpoint EP          CRI socket (default unix:///run/containerd/containerd.sock;
#                                  "" runs no pods)
#   --mqtt-server URL              the device twin's broker (default tcp://127.0.0.1:1883; "" off)
#   --local-api-listen HOST:PORT   the edge's local API (default 127.0.0.1:10550)
#   --labels K=V[,K=V]             labels of the Node
#   --root DIR                     install under DIR instead of / (for tests: every path in the
#                                  written configuration is under DIR too; systemd is not touched)
#   --force                        replace a configuration or unit this script did not write (the
#                                  original is kept and put back by --uninstall)
#   --uninstall                    stop and remove everything an earlier run installed, the
#                                  node's credentials and cache included
#
# Writes /usr/local/bin/edgecore, /etc/edgeplane/edgecore.yaml and
# /etc/systemd/system/edgecore.service, joins (the credentials go to
# /var/lib/edgeplane/edgecore), then enables and starts the service where systemd runs.
# Idempotent: running it again changes only what differs, and a node that has joined does not
# join again. What it created is listed in /var/lib/edgeplane/install-edgecore.manifest, which
# --uninstall follows. Exit status: 0 done; 2 usage or invalid flags; 1 failed: until the join
# has succeeded, every file of the run is put back as it was; a service that does not start
# after a successful join stays installed, for `journalctl -u edgecore`.
set -euo pipefail
umask 022

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)

usage() {
  sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
say() { echo "install-edgecore: $*"; }
die() {
  echo "install-edgecore: $*" >&2
  exit 1
}
bad_flag() {
  echo "install-edgecore: $*" >&2
  exit 2
}

CLOUD="" TOKEN="" NODE_NAME="" BINARY="" ROOT="" FORCE=0 UNINSTALL=0 LABELS=""
RUNTIME_ENDPOINT="unix:///run/containerd/containerd.sock"
MQTT_SERVER="tcp://127.0.0.1:1883"
LOCAL_API_LISTEN="127.0.0.1:10550"
while [[ $# -gt 0 ]]; do
  case $1 in
    --cloud | --token | --node-name | --binary | --runtime-endpoint | --mqtt-server | \
      --local-api-listen | --labels | --root)
      [[ $# -ge 2 ]] || { echo "install-edgecore: $1 needs a value" >&2; usage; }
      # Values go into a YAML file and a unit: one line of printable characters each.
      [[ $2 != *[[:cntrl:]]* ]] || bad_flag "$1: control characters are not allowed"
      case $1 in
        --cloud) CLOUD=$2 ;;
        --token) TOKEN=$2 ;;
        --node-name) NODE_NAME=$2 ;;
        --binary) BINARY=$2 ;;
        --runtime-endpoint) RUNTIME_ENDPOINT=$2 ;;
        --mqtt-server) MQTT_SERVER=$2 ;;
        --local-api-listen) LOCAL_API_LISTEN=$2 ;;
        --labels) LABELS=$2 ;;
        --root) ROOT=$2 ;;
      esac
      shift 2
      ;;
    --force) FORCE=1; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    -h | --help) usage ;;
    *) echo "install-edgecore: unknown argument $1" >&2; usage ;;
  esac
done

if [[ -n $ROOT ]]; then
  [[ $ROOT =~ ^[A-Za-z0-9_./+-]+$ ]] || bad_flag "--root $ROOT: use letters, digits and _./+-"
  mkdir -p "$ROOT" || die "--root $ROOT: cannot create it"
  ROOT=$(cd "$ROOT" && pwd)
  [[ $ROOT != / ]] || ROOT=""
fi
BIN_PATH=$ROOT/usr/local/bin/edgecore
CONFIG_DIR=$ROOT/etc/edgeplane
CONFIG=$CONFIG_DIR/edgecore.yaml
UNIT=$ROOT/etc/systemd/system/edgecore.service
STATE_DIR=$ROOT/var/lib/edgeplane
DATA_DIR=$STATE_DIR/edgecore
MANIFEST=$STATE_DIR/install-edgecore.manifest
ORIGINALS=$STATE_DIR/install-edgecore.originals
DMI_SOCKET=$ROOT/etc/kubeedge/dmi.sock
UNIT_TEMPLATE=$REPO_DIR/deploy/systemd/edgecore.service
[[ -f $UNIT_TEMPLATE ]] || UNIT_TEMPLATE=$SCRIPT_DIR/edgecore.service

# One run at a time per root (the manifest and the files are shared).
exec 9>"/tmp/install-edgecore-$(printf '%s' "${ROOT:-/}" | sha256sum | cut -c1-16).lock"
flock -n 9 || die "another install-edgecore.sh is running for ${ROOT:-/}"

# systemd is used only for a real install on a machine where it runs.
use_systemd() { [[ -z $ROOT && -d /run/systemd/system ]] && command -v systemctl >/dev/null; }

# The manifest: one "KIND VALUE" line per thing this script created or decided:
#   file PATH, dir PATH, data PATH   created here (removed by --uninstall)
#   replaced PATH                    an operator's file replaced with --force (its original is
#                                    under ORIGINALS, put back by --uninstall)
#   node NAME                        the name the node joined as
declare -a CREATED=()
in_manifest() { [[ -f $MANIFEST ]] && grep -qxF "$1 $2" "$MANIFEST"; }
ours() { in_manifest file "$1" || in_manifest replaced "$1"; }
record() {
  in_manifest "$1" "$2" || CREATED+=("$1 $2")
}
write_manifest() {
  [[ ${#CREATED[@]} -gt 0 ]] || return 0
  mkdir -p "$STATE_DIR"
  local tmp=$MANIFEST.tmp
  { [[ -f $MANIFEST ]] && cat "$MANIFEST"; printf '%s\n' "${CREATED[@]}"; } >"$tmp"
  grep -qxF "file $MANIFEST" "$tmp" || echo "file $MANIFEST" >>"$tmp"
  mv -f "$tmp" "$MANIFEST"
}
# original_of PATH: where --force keeps the operator's file that was at PATH.
original_of() { echo "$ORIGINALS/${1//\//%}"; }

# remove_listed KINDS LINES...: undoes the listed entries of the given kinds (a "|"-separated
# list of file, data, dir, replaced), newest first; directories only when empty. Only absolute
# paths under ROOT are touched, and only DATA_DIR is removed recursively.
remove_listed() {
  local kinds=$1 line kind path i
  shift
  for ((i = $#; i >= 1; i--)); do
    line=${!i}
    kind=${line%% *}
    path=${line#* }
    [[ $path == /* && $path == "$ROOT"/* && "|$kinds|" == *"|$kind|"* ]] || continue
    case $kind in
      file) rm -f -- "$path" ;;
      data) if [[ $path == "$DATA_DIR" ]]; then rm -rf -- "$path"; fi ;;
      dir) rmdir -- "$path" 2>/dev/null || true ;;
      replaced)
        if [[ -f $(original_of "$path") ]]; then
          mv -f -- "$(original_of "$path")" "$path"
        fi
        ;;
    esac
  done
  return 0
}

if [[ $UNINSTALL == 1 ]]; then
  [[ -f $MANIFEST ]] || die "nothing to uninstall: $MANIFEST does not exist"
  if use_systemd && ours "$UNIT"; then
    systemctl disable --now edgecore.service >/dev/null 2>&1 || true
  fi
  mapfile -t lines < <(grep -vxF "file $MANIFEST" "$MANIFEST")
  remove_listed "file|data|replaced" "${lines[@]}"
  rmdir -- "$ORIGINALS" 2>/dev/null || true
  # The manifest goes after what it lists (an interrupted uninstall can be run again), the
  # directories after it.
  rm -f -- "$MANIFEST"
  remove_listed dir "${lines[@]}"
  if use_systemd; then systemctl daemon-reload || true; fi
  say "removed edgecore (the Node stays in the cluster until \`kubectl delete node\`)"
  exit 0
fi

# ---- install -------------------------------------------------------------------------------
[[ -n $CLOUD ]] || { echo "install-edgecore: --cloud is required" >&2; usage; }
if [[ -z $NODE_NAME ]]; then
  NODE_NAME=$(hostname | tr '[:upper:]' '[:lower:]')
fi
[[ $NODE_NAME =~ ^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$ ]] ||
  bad_flag "--node-name $NODE_NAME: not a valid node name (lower-case letters, digits, '-' and '.')"
IFS=, read -ra addrs <<<"$CLOUD"
[[ ${#addrs[@]} -gt 0 ]] || bad_flag "--cloud $CLOUD: expected HOST:PORT"
for addr in "${addrs[@]}"; do
  [[ $addr =~ ^[A-Za-z0-9.-]+:[0-9]+$ || $addr =~ ^\[[0-9a-fA-F:]+\]:[0-9]+$ ]] ||
    bad_flag "--cloud $addr: expected HOST:PORT"
done
if [[ -f $DATA_DIR/pki/node.pem ]] && [[ -f $MANIFEST ]] && grep -q '^node ' "$MANIFEST" &&
  ! in_manifest node "$NODE_NAME"; then
  die "this machine joined as $(sed -n 's/^node //p' "$MANIFEST" | head -1); to join as" \
    "$NODE_NAME, run --uninstall first (and delete the old Node in the cluster)"
fi
if [[ -z $BINARY ]]; then
  for candidate in "$SCRIPT_DIR/edgecore" "$REPO_DIR/build/edgecore/edgecore" \
    "$(command -v edgecore || true)"; do
    if [[ -n $candidate && -x $candidate && $candidate != "$BIN_PATH" ]]; then
      BINARY=$candidate
      break
    fi
  done
  [[ -n $BINARY ]] || die "no edgecore binary found: pass --binary FILE"
fi
[[ -f $BINARY && -x $BINARY ]] || bad_flag "--binary $BINARY: not an executable file"
"$BINARY" --version >/dev/null 2>&1 || die "--binary $BINARY: does not run on this machine"
[[ -f $UNIT_TEMPLATE ]] || die "the unit template $UNIT_TEMPLATE is missing"
if [[ $RUNTIME_ENDPOINT == unix://* && ! -S ${RUNTIME_ENDPOINT#unix://} ]]; then
  say "warning: nothing listens on $RUNTIME_ENDPOINT yet: pods start once containerd does" >&2
fi

# yaml_quote VALUE: a double-quoted YAML scalar.
yaml_quote() {
  local v=${1//\\/\\\\}
  v=${v//\"/\\\"}
  printf '"%s"' "$v"
}

TMP=$(mktemp -d)
mkdir "$TMP/previous"
# On any failure before the join succeeded, this run's changes are undone: new files go, and
# files it replaced get their previous content back (the manifest too).
SUCCEEDED=0
ARMED=0
declare -a REPLACED_NOW=()   # "DEST BACKUP" of files this run overwrote
declare -a ORIGINALS_NOW=()  # operators' files this run saved under ORIGINALS
on_exit() {
  if [[ $ARMED == 1 && $SUCCEEDED != 1 ]]; then
    local entry
    for entry in "${REPLACED_NOW[@]}"; do
      mv -f -- "${entry#* }" "${entry%% *}"
    done
    for entry in "${ORIGINALS_NOW[@]}"; do
      rm -f -- "$entry"
    done
    remove_listed "file|data" "${CREATED[@]}"
    if [[ -f $TMP/manifest.orig ]]; then
      cp -f "$TMP/manifest.orig" "$MANIFEST"
    else
      rm -f -- "$MANIFEST"
    fi
    remove_listed dir "${CREATED[@]}"
  fi
  rm -rf "$TMP"
}
trap on_exit EXIT
trap 'exit 1' INT TERM
[[ -f $MANIFEST ]] && cp "$MANIFEST" "$TMP/manifest.orig"

{
  echo "# Written by install-edgecore.sh; flags of the same name override it (docs/install.md)."
  echo "nodeName: $(yaml_quote "$NODE_NAME")"
  echo "cloud: $(yaml_quote "$CLOUD")"
  echo "dataDir: $(yaml_quote "$DATA_DIR")"
  echo "localApiListen: $(yaml_quote "$LOCAL_API_LISTEN")"
  echo "runtimeEndpoint: $(yaml_quote "$RUNTIME_ENDPOINT")"
  echo "dmiSocket: $(yaml_quote "$DMI_SOCKET")"
  echo "mqtt:"
  echo "  server: $(yaml_quote "$MQTT_SERVER")"
  if [[ -n $LABELS ]]; then
    echo "labels:"
    IFS=, read -ra pairs <<<"$LABELS"
    for pair in "${pairs[@]}"; do
      [[ $pair == *=* && -n ${pair%%=*} ]] || bad_flag "--labels $pair: expected KEY=VALUE"
      echo "  $(yaml_quote "${pair%%=*}"): $(yaml_quote "${pair#*=}")"
    done
  fi
} >"$TMP/edgecore.yaml"
sed -e "s|/usr/local/bin/edgecore|$BIN_PATH|g" -e "s|/etc/edgeplane/|$CONFIG_DIR/|g" \
  "$UNIT_TEMPLATE" >"$TMP/edgecore.service"

# Refuse to overwrite what an operator wrote, unless --force.
for target in "$CONFIG" "$UNIT"; do
  if [[ -e $target ]] && ! ours "$target" && [[ $FORCE != 1 ]]; then
    die "$target exists and was not written by this script: remove it or pass --force"
  fi
done

ARMED=1
CHANGED=0
# mkdir_recorded DIR: creates DIR and its missing parents, recording each.
mkdir_recorded() {
  local d=$1 missing=()
  while [[ ! -d $d ]]; do
    missing=("$d" "${missing[@]}")
    d=$(dirname "$d")
  done
  for d in "${missing[@]}"; do
    mkdir -m 0755 "$d"
    record dir "$d"
  done
}
# install_file SRC DEST MODE: copies when the content or mode differs. A file this script did
# not write (--force) is kept under ORIGINALS for --uninstall; any file it replaces is kept in
# TMP until the run has succeeded.
install_file() {
  local src=$1 dest=$2 mode=$3
  if [[ -f $dest ]] && cmp -s "$src" "$dest" && [[ $(stat -c %a "$dest") == "${mode#0}" ]]; then
    return 0
  fi
  mkdir_recorded "$(dirname "$dest")"
  if [[ -e $dest ]]; then
    if ! ours "$dest"; then
      mkdir_recorded "$ORIGINALS"
      cp -p -- "$dest" "$(original_of "$dest")"
      record replaced "$dest"
      ORIGINALS_NOW+=("$(original_of "$dest")")
    fi
    local backup
    backup=$TMP/previous/${#REPLACED_NOW[@]}
    cp -p -- "$dest" "$backup"
    REPLACED_NOW+=("$dest $backup")
  else
    record file "$dest"
  fi
  install -m "$mode" "$src" "$dest.new"
  mv -f "$dest.new" "$dest"
  CHANGED=1
  say "wrote $dest"
}

install_file "$BINARY" "$BIN_PATH" 0755
install_file "$TMP/edgecore.yaml" "$CONFIG" 0644
install_file "$TMP/edgecore.service" "$UNIT" 0644
mkdir_recorded "$STATE_DIR"
# Where edgecore puts the DMI socket for mappers (removed on uninstall if this run made it).
mkdir_recorded "$(dirname "$DMI_SOCKET")"
[[ -d $DATA_DIR ]] || record data "$DATA_DIR"
record node "$NODE_NAME"
# The manifest is written before joining: a join interrupted by a power cut still leaves a
# record of what to remove.
write_manifest

# Join (a node with credentials skips this). The token goes through a private file, not the
# process list, and is not kept.
join_args=(--config "$CONFIG" --join-only --log-level error)
if [[ -n $TOKEN ]]; then
  printf '%s\n' "$TOKEN" >"$TMP/token"
  chmod 0600 "$TMP/token"
  join_args+=(--token-file "$TMP/token")
fi
if ! "$BIN_PATH" "${join_args[@]}"; then
  die "joining $CLOUD as $NODE_NAME failed (see above); nothing of this run is left"
fi
SUCCEEDED=1

if use_systemd; then
  systemctl daemon-reload
  systemctl enable edgecore.service >/dev/null 2>&1 ||
    die "systemctl enable edgecore.service failed; edgecore is installed and joined"
  if [[ $CHANGED == 1 ]]; then
    systemctl restart edgecore.service
  else
    systemctl start edgecore.service
  fi
  for _ in $(seq 1 50); do
    systemctl is-active --quiet edgecore.service && break
    sleep 0.2
  done
  systemctl is-active --quiet edgecore.service ||
    die "edgecore.service did not start (journalctl -u edgecore); it is installed and joined"
  say "edgecore.service is running; node $NODE_NAME goes Ready in the cloud within a heartbeat"
else
  say "installed; systemd is not in charge here: start edgecore with"
  say "  $BIN_PATH --config $CONFIG"
fi
