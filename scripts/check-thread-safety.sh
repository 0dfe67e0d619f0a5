#!/usr/bin/env bash
# Clang's thread-safety analysis (common/thread_annotations.h) over every source file of
# common/, cloudcore/, edgecore/ and edgectl/ (not the example mappers), and of the test fakes
# that share state between threads (FakeRuntime): each file is parsed by clang++ with the flags
# of the build (BUILD_DIR's compile_commands.json, default build/) and
# -Wthread-safety as an error, without generating code. Exit status 1 names each violation.
#   bash scripts/check-thread-safety.sh            # after a build (scripts/build.sh)
#   bash scripts/check-thread-safety.sh FILE...    # only these source files
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
CLANGXX=${CLANGXX:-clang++}
db="$BUILD_DIR/compile_commands.json"
[[ -f "$db" ]] || { echo "check-thread-safety: $db is missing: build first" >&2; exit 2; }
exec python3 - "$db" "$CLANGXX" "$(nproc)" "$@" <<'PY'
import json, os, shlex, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

db, clangxx, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
only = {os.path.abspath(f) for f in sys.argv[4:]}
root = os.getcwd()
dirs = tuple(os.path.join(root, d) + os.sep for d in ("common", "cloudcore", "edgecore", "edgectl"))
fakes = {os.path.join(root, f) for f in ("tests/edgecore/edged/fake_runtime.cc",)}
entries = [e for e in json.load(open(db))
           if os.path.abspath(e["file"]).startswith(dirs) or os.path.abspath(e["file"]) in fakes]
seen, work = set(), []
for e in entries:
    f = os.path.abspath(e["file"])
    if f in seen or (only and f not in only):
        continue
    seen.add(f)
    args = shlex.split(e["command"]) if "command" in e else list(e["arguments"])
    out, skip = [clangxx], False
    for i, a in enumerate(args[1:], 1):
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD", "-Werror") or a.startswith("-W") or a == f:
            continue
        out.append(a)
    # Asio's coroutine detection does not recognise clang 14 with libstdc++: say it.
    out += ["-DBOOST_ASIO_HAS_CO_AWAIT", "-fsyntax-only", "-ferror-limit=0", "-Wno-everything", "-Wthread-safety",
            "-Werror=thread-safety", f]
    work.append((f, e["directory"], out))

def run(item):
    f, cwd, cmd = item
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return f, p.returncode, p.stderr

failed = 0
with ThreadPoolExecutor(max_workers=jobs) as pool:
    for f, rc, err in pool.map(run, work):
        if rc != 0:
            failed += 1
            sys.stderr.write(err)
print(f"check-thread-safety: {len(work)} files, {failed} with violations")
sys.exit(1 if failed else 0)
PY
