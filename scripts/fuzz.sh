#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for FUZZ_SECONDS
# (default 15) on its seed corpus. Fails on any crash, leak or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-15}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(pwd)} CCACHE_NOHASHDIR=1
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DEP_FUZZ=ON -DEP_BUILD_TESTS=OFF -DEP_BUILD_BENCH=OFF >/dev/null
targets=(models_fuzz label_selector_fuzz field_selector_fuzz strategic_merge_patch_fuzz validation_fuzz
         yaml_documents_fuzz cri_log_fuzz grpc_deframer_fuzz csr_fuzz credentials_fuzz jwt_fuzz
         tunnel_entry_fuzz proto_json_fuzz mqtt_packet_fuzz device_twin_fuzz route_rules_fuzz
         json_limits_fuzz oci_manifest_fuzz field_validation_fuzz resource_metrics_fuzz
         service_rules_fuzz managed_fields_fuzz websocket_frame_fuzz spdy_fuzz jsonpath_fuzz
         image_layer_fuzz dashboard_fuzz)
ninja -C build-fuzz -j "$(nproc)" "${targets[@]}"
for t in "${targets[@]}"; do
  corpus=tests/fuzz/corpus/${t%_fuzz}
  work=$(mktemp -d)
  [[ -d "$corpus" ]] && cp -r "$corpus"/. "$work"/
  echo "fuzz: $t for ${SECONDS_EACH}s"
  "build-fuzz/tests/fuzz/$t" -max_total_time="$SECONDS_EACH" -print_final_stats=0 \
    -artifact_prefix="build-fuzz/$t-" "$work" 2>&1 | tail -2
  rm -rf "$work"
done
echo "fuzz: ${#targets[@]} targets ran clean"
