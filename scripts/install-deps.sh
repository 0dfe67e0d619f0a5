#!/usr/bin/env bash
# Installs every build and test dependency from Debian 12 packages. Idempotent: when all
# packages are present it only checks (about a second) and touches nothing.
#   scripts/install-deps.sh [--arm]
# --arm adds what building for arm64 and armhf and running those builds needs (docs/arm.md):
# Debian's cross toolchains, qemu-user and mmdebstrap (scripts/cross-sysroot.sh).
set -euo pipefail
ARM=0
[[ ${1:-} == --arm ]] && ARM=1

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang clang-format clang-tidy
  # libraries
  libboost-dev libboost-system-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libcli11-dev libsqlite3-dev libssl-dev libgrpc++-dev libprotobuf-dev protobuf-compiler
  protobuf-compiler-grpc
  # the sqlite3 shell: salvaging a damaged store (docs/store.md, "Damaged data")
  sqlite3
  # HTTP/2 for edgecore's small gRPC client (common/grpclite); wolfSSL for the edge's TLS and
  # node key/CSR (a third of OpenSSL's resident memory: docs/performance.md)
  libnghttp2-dev libwolfssl-dev
  # zlib: SPDY's header compression, for kubectl port-forward (cloudcore/apiserver/spdy.h)
  zlib1g-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev curl ca-certificates procps
  # container runtime tests (scripts/cri-env.sh): containerd, CNI (+ iptables for hostPort),
  # local registries (apache2-utils: htpasswd makes the bcrypt file the authenticated one needs)
  containerd runc containernetworking-plugins docker-registry skopeo umoci busybox-static iptables
  apache2-utils openssl
  # the etcd store (cloudcore --store etcd://, docs/store.md): etcd members for tests and
  # benchmarks, etcdctl for operators
  etcd-server etcd-client
  # devices: the MQTT broker the device twin speaks to, and clients that play devices in tests
  mosquitto mosquitto-clients
  # the example edge AI app (examples/digits-classifier): OpenCV's DNN module runs its ONNX model,
  # stb decodes PNG/JPEG; its model is trained with PyTorch on scikit-learn's digits
  libopencv-dnn-dev libopencv-imgproc-dev libstb-dev python3-torch python3-torchvision
  python3-sklearn python3-pil
  # the official Kubernetes Python client, driven against cloudcore by python_client_test
  python3-kubernetes
  # the Python side of the example's comparison (bench/classifier.sh): Flask + OpenCV, gunicorn
  python3-flask python3-opencv gunicorn
  # Debian packages of cloudcore, edgecore and edgectl (scripts/build-debs.sh): debhelper builds
  # them, lintian checks them; debian_packages_test installs, upgrades and purges them in a
  # Debian 12 container: podman runs it on a root file system debootstrap makes
  debhelper lintian podman debootstrap
  # cloud and edges in containers (deploy/compose, scripts/ci-containers.sh)
  podman-compose
  # the dashboard's browser tests (dashboard_e2e_test): headless Chromium driven by playwright-core
  # from npm (dashboard/package.json), and a font to render its pages and screenshots
  chromium fonts-dejavu-core
)
if ((ARM)); then
  PACKAGES+=(crossbuild-essential-arm64 crossbuild-essential-armhf qemu-user-static mmdebstrap)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#PACKAGES[@]} packages present"
fi

# Node.js >= 20.19 and npm build the dashboard (scripts/build-dashboard.sh: Vite 8). They come
# with this machine image; Debian 12's nodejs (18) is too old for Vite 8.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1 ||
  ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'; then
  echo "install-deps: Node.js >= 20.19 with npm is needed to build the dashboard (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if ! command -v kubectl >/dev/null 2>&1; then
  # kubectl is part of this machine image; Debian 12's kubernetes-client (1.20) is a fallback
  # that is too old for some compatibility tests (they skip what it cannot do).
  echo "install-deps: kubectl not found; the kubectl compatibility tests will be skipped" >&2
fi
