#!/usr/bin/env bash
# Pushes a model file to an OCI registry as a one-layer artifact, the way `oras push` does
# (oras is not packaged in Debian 12), so that a Model can name it as
# oci://REGISTRY/REPO:TAG (docs/models.md, "Models from an OCI registry").
#
#   scripts/oci-push.sh FILE REGISTRY/REPO:TAG [--ca CA_FILE] [--user USER:PASSWORD]
#                       [--media-type TYPE] [--plain-http]
#
# The layer carries the file's name in org.opencontainers.image.title (the name the model volume
# shows it under); the config is OCI's empty descriptor. Prints the manifest's digest, so the
# artifact can also be named oci://REGISTRY/REPO@sha256:.... Uses curl only.
set -euo pipefail

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 2 ]] || usage
FILE=$1
TARGET=$2
shift 2
CA=""
USERPASS=""
MEDIA="application/vnd.edgeplane.model.layer.v1"
SCHEME=https
while [[ $# -gt 0 ]]; do
  case $1 in
    --ca) CA=$2; shift 2 ;;
    --user) USERPASS=$2; shift 2 ;;
    --media-type) MEDIA=$2; shift 2 ;;
    --plain-http) SCHEME=http; shift ;;
    *) echo "oci-push: unknown argument $1" >&2; usage ;;
  esac
done
[[ -f $FILE ]] || { echo "oci-push: $FILE: no such file" >&2; exit 2; }
REGISTRY=${TARGET%%/*}
REST=${TARGET#*/}
[[ $REGISTRY != "$TARGET" && -n $REST ]] || { echo "oci-push: expected REGISTRY/REPO:TAG" >&2; exit 2; }
REPO=${REST%:*}
TAG=${REST##*:}
[[ $REPO != "$REST" && -n $TAG ]] || { echo "oci-push: $TARGET names no tag" >&2; exit 2; }

CURL=(curl -sS --fail-with-body)
[[ -n $CA ]] && CURL+=(--cacert "$CA")
[[ -n $USERPASS ]] && CURL+=(-u "$USERPASS")
BASE="$SCHEME://$REGISTRY/v2/$REPO"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# upload FILE DIGEST: a monolithic upload (POST, then PUT with the digest) unless it is there.
upload() {
  local file=$1 digest=$2 location
  if "${CURL[@]}" -o /dev/null -I "$BASE/blobs/$digest" 2>/dev/null; then
    return 0
  fi
  location=$("${CURL[@]}" -o /dev/null -D - -X POST "$BASE/blobs/uploads/" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  [[ -n $location ]] || { echo "oci-push: the registry gave no upload location" >&2; exit 1; }
  [[ $location == /* ]] && location="$SCHEME://$REGISTRY$location"
  if [[ $location == *\?* ]]; then location="$location&digest=$digest"; else location="$location?digest=$digest"; fi
  "${CURL[@]}" -o /dev/null -X PUT -H "Content-Type: application/octet-stream" \
    --data-binary "@$file" "$location"
}

printf '{}' >"$TMP/config"
CONFIG_DIGEST="sha256:$(sha256sum "$TMP/config" | cut -d' ' -f1)"
FILE_DIGEST="sha256:$(sha256sum "$FILE" | cut -d' ' -f1)"
FILE_SIZE=$(stat -c %s "$FILE")
TITLE=$(basename "$FILE")
upload "$TMP/config" "$CONFIG_DIGEST"
upload "$FILE" "$FILE_DIGEST"

python3 - "$CONFIG_DIGEST" "$FILE_DIGEST" "$FILE_SIZE" "$TITLE" "$MEDIA" >"$TMP/manifest" <<'PY'
import json, sys
config, digest, size, title, media = sys.argv[1:]
print(json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.edgeplane.model.v1",
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
    "layers": [{"mediaType": media, "digest": digest, "size": int(size),
                "annotations": {"org.opencontainers.image.title": title}}],
}, separators=(",", ":")), end="")
PY
"${CURL[@]}" -o /dev/null -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
  --data-binary "@$TMP/manifest" "$BASE/manifests/$TAG"
echo "sha256:$(sha256sum "$TMP/manifest" | cut -d' ' -f1)"
