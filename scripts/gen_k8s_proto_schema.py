#!/usr/bin/env python3
"""Writes common/api/k8s_proto_schema.inc: the protobuf field numbers, names and types of the
Kubernetes messages cloudcore decodes (the kinds it serves, Eviction, DeleteOptions and all they
contain), taken from Kubernetes' own generated.proto files and, for embedded (inline) fields,
its types.go. Only facts (numbers, names, types) are written; nothing is copied verbatim.

  python3 scripts/gen_k8s_proto_schema.py API_REPO APIMACHINERY_REPO > common/api/k8s_proto_schema.inc

where the two arguments are git checkouts of k8s.io/api and k8s.io/apimachinery.
"""
import re
import subprocess
import sys

API, MACHINERY = sys.argv[1], sys.argv[2]
PROTOS = [
    (MACHINERY, "pkg/apis/meta/v1", "k8s.io.apimachinery.pkg.apis.meta.v1"),
    (MACHINERY, "pkg/api/resource", "k8s.io.apimachinery.pkg.api.resource"),
    (MACHINERY, "pkg/util/intstr", "k8s.io.apimachinery.pkg.util.intstr"),
    (MACHINERY, "pkg/runtime", "k8s.io.apimachinery.pkg.runtime"),
    (API, "core/v1", "k8s.io.api.core.v1"),
    (API, "apps/v1", "k8s.io.api.apps.v1"),
    (API, "rbac/v1", "k8s.io.api.rbac.v1"),
    (API, "policy/v1", "k8s.io.api.policy.v1"),
    (API, "discovery/v1", "k8s.io.api.discovery.v1"),
    (API, "coordination/v1", "k8s.io.api.coordination.v1"),
]
ROOTS = {  # apiVersion/kind -> message
    "v1/Namespace": "k8s.io.api.core.v1.Namespace",
    "v1/Node": "k8s.io.api.core.v1.Node",
    "v1/Pod": "k8s.io.api.core.v1.Pod",
    "v1/ConfigMap": "k8s.io.api.core.v1.ConfigMap",
    "v1/Secret": "k8s.io.api.core.v1.Secret",
    "v1/Event": "k8s.io.api.core.v1.Event",
    "v1/ServiceAccount": "k8s.io.api.core.v1.ServiceAccount",
    "v1/Service": "k8s.io.api.core.v1.Service",
    "v1/Endpoints": "k8s.io.api.core.v1.Endpoints",
    "discovery.k8s.io/v1/EndpointSlice": "k8s.io.api.discovery.v1.EndpointSlice",
    "coordination.k8s.io/v1/Lease": "k8s.io.api.coordination.v1.Lease",
    "apps/v1/Deployment": "k8s.io.api.apps.v1.Deployment",
    "apps/v1/ReplicaSet": "k8s.io.api.apps.v1.ReplicaSet",
    "rbac.authorization.k8s.io/v1/ClusterRole": "k8s.io.api.rbac.v1.ClusterRole",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "k8s.io.api.rbac.v1.ClusterRoleBinding",
    "rbac.authorization.k8s.io/v1/Role": "k8s.io.api.rbac.v1.Role",
    "rbac.authorization.k8s.io/v1/RoleBinding": "k8s.io.api.rbac.v1.RoleBinding",
    "policy/v1/Eviction": "k8s.io.api.policy.v1.Eviction",
    "v1/DeleteOptions": "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "meta.k8s.io/v1/DeleteOptions": "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
}
SCALARS = {"string": "kString", "bytes": "kBytes", "int32": "kInt32", "int64": "kInt64",
           "bool": "kBool", "double": "kDouble", "float": "kDouble", "uint32": "kInt64",
           "uint64": "kInt64"}


def git_show(repo, path):
    return subprocess.run(["git", "--git-dir", repo + "/.git" if not repo.endswith(".git") and
                           not repo.endswith("/repo") else repo, "show", "HEAD:" + path],
                          check=True, capture_output=True, text=True).stdout


messages = {}  # full name -> [(number, name, type, repeated, map_value)]
inline = set()  # (full message name, proto field name)
# (full message name, proto field name): a Go value field tagged omitempty, which Go's JSON
# leaves out when zero (pointers, and fields without omitempty, are kept).
omit_zero = set()
for repo, d, pkg in PROTOS:
    src = git_show(repo, d + "/generated.proto")
    for m in re.finditer(r"^message (\w+) \{(.*?)^\}", src, re.S | re.M):
        fields = []
        for f in re.finditer(r"^\s*(optional|repeated)?\s*(map<\s*string\s*,\s*([\w.]+)\s*>|[\w.]+)\s+(\w+)\s*=\s*(\d+);",
                             m.group(2), re.M):
            label, typ, mapval, name, num = f.groups()
            fields.append((int(num), name, typ, label == "repeated", mapval))
        messages[pkg + "." + m.group(1)] = (pkg, fields)
    try:
        names = subprocess.run(["git", "--git-dir", repo, "ls-tree", "--name-only", "HEAD", d + "/"],
                               check=True, capture_output=True, text=True).stdout.split()
    except subprocess.CalledProcessError:
        names = []
    for gofile in [n for n in names if n.endswith("types.go")]:
        struct = None
        for line in git_show(repo, gofile).splitlines():
            s = re.match(r"^type (\w+) struct", line)
            if s:
                struct = s.group(1)
            fm = re.match(r'^\s+\w+\s+(\S+)\s+`json:"[^"]*,omitempty"[^`]*protobuf:"[^"]*name=(\w+)', line)
            if fm and struct and not fm.group(1).startswith("*"):
                omit_zero.add((pkg + "." + struct, fm.group(2)))
            if re.search(r'json:"(,inline)?"', line):
                p = re.search(r'protobuf:"[^"]*name=(\w+)', line)
                n = re.search(r'protobuf:"\w+,(\d+),', line)
                if p and struct:
                    inline.add((pkg + "." + struct, p.group(1)))
                elif n and struct:
                    inline.add((pkg + "." + struct, int(n.group(1))))


def resolve(typ, pkg):
    if typ in SCALARS:
        return None
    t = typ.lstrip(".")
    if t in messages:
        return t
    if pkg + "." + t in messages:
        return pkg + "." + t
    raise SystemExit("unknown type %s in %s" % (typ, pkg))


needed, todo = [], list(ROOTS.values())
while todo:
    name = todo.pop()
    if name in needed:
        continue
    needed.append(name)
    pkg, fields = messages[name]
    for _, _, typ, _, mapval in fields:
        target = resolve(mapval if mapval else typ, pkg)
        if target and target not in needed:
            todo.append(target)

print("// Generated by scripts/gen_k8s_proto_schema.py from Kubernetes' generated.proto and")
print("// types.go (k8s.io/api, k8s.io/apimachinery): field numbers, JSON names and types only.")
print("// Do not edit; regenerate.")
print("// clang-format off")
print("inline const std::vector<MessageSchema> kK8sMessages = {")
for name in sorted(needed):
    pkg, fields = messages[name]
    print('  {"%s", {' % name)
    for num, fname, typ, rep, mapval in sorted(fields):
        if mapval:
            kind, target = "kMap", resolve(mapval, pkg)
            scalar = SCALARS.get(mapval, "kMessage")
        else:
            target = resolve(typ, pkg)
            kind = SCALARS.get(typ, "kMessage")
            scalar = "kString"
        flags = []
        print('    {%d, "%s", FieldType::%s, %s, %s, %s, FieldType::%s, "%s"},' % (
            num, fname, kind, "true" if rep else "false",
            "true" if (name, fname) in inline or (name, num) in inline else "false",
            "true" if (name, fname) in omit_zero else "false", scalar, target or ""))
    print("  }},")
print("};")
print("inline const std::vector<std::pair<const char*, const char*>> kK8sKinds = {")
for k in sorted(ROOTS):
    print('  {"%s", "%s"},' % (k, ROOTS[k]))
print("};")
print("// clang-format on")
