#!/usr/bin/env python3
"""Writes a one-layer OCI image (an OCI image layout directory) from a root file system.

    oci_image.py --rootfs DIR --layout OUT --ref NAME:TAG --entrypoint /usr/bin/x [--cmd ARG]...
                 [--user UID:GID] [--env K=V]... [--label K=V]... [--workdir DIR]
                 [--arch amd64] [--variant v7] [--owner PATH=UID:GID]... [--multi-arch]

Reproducible: the layer is a tar with entries in name order, every mtime SOURCE_DATE_EPOCH
(default 0), owners 0:0 unless --owner names a path (and its contents), no user or group
names, gzip without a timestamp; the config's "created" is SOURCE_DATE_EPOCH too. The same
inputs give the same digests. OUT gets oci-layout, index.json (the manifest annotated with
org.opencontainers.image.ref.name = TAG) and blobs/sha256/. Prints the manifest's digest.
With --multi-arch, TAG names an image index instead, and the manifest joins it (replacing the
one of the same platform): run once per architecture into the same OUT.
Standard library only (used by scripts/build-images.sh).
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile


def fail(msg):
    print(f"oci_image: {msg}", file=sys.stderr)
    sys.exit(2)


def key_values(items, flag):
    out = {}
    for item in items:
        if "=" not in item or not item.split("=", 1)[0]:
            fail(f"{flag} {item}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k] = v
    return out


def layer_tar(rootfs, epoch, owners):
    """The uncompressed layer: every entry under rootfs, sorted, with fixed metadata."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = []
        for base, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in dirs + sorted(files):
                paths.append(os.path.join(base, name))
        for path in sorted(paths, key=lambda p: os.path.relpath(p, rootfs)):
            rel = os.path.relpath(path, rootfs)
            info = tar.gettarinfo(path, arcname=rel)
            info.mtime = epoch
            info.uid, info.gid = 0, 0
            for prefix, (uid, gid) in owners.items():
                if rel == prefix or rel.startswith(prefix + "/"):
                    info.uid, info.gid = uid, gid
            info.uname, info.gname = "", ""
            # No group- or world-writable entries unless sticky (/tmp), whatever the umask was.
            if not info.issym() and not info.mode & stat.S_ISVTX:
                info.mode &= ~0o022
            info.pax_headers = {}
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            elif info.isdir() or info.issym() or info.islnk():
                tar.addfile(info)
            else:
                fail(f"{rel}: only files, directories and symlinks go into an image")
    return buf.getvalue()


def write_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def collect_garbage(layout, index):
    """Deletes the blobs nothing in index.json reaches (the indexes a new platform replaced)."""
    blobs = os.path.join(layout, "blobs", "sha256")
    keep, todo = set(), list(index["manifests"])
    while todo:
        d = todo.pop()
        h = d["digest"].split(":", 1)[1]
        keep.add(h)
        if d.get("mediaType", "").endswith(("manifest.v1+json", "index.v1+json")):
            with open(os.path.join(blobs, h), "rb") as f:
                doc = json.load(f)
            todo += doc.get("manifests", []) + doc.get("layers", [])
            if "config" in doc:
                todo.append(doc["config"])
    for h in os.listdir(blobs):
        if h not in keep:
            os.remove(os.path.join(blobs, h))


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rootfs", required=True)
    p.add_argument("--layout", required=True)
    p.add_argument("--ref", required=True)
    p.add_argument("--entrypoint", required=True)
    p.add_argument("--cmd", action="append", default=[])
    p.add_argument("--user", default="")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--workdir", default="/")
    p.add_argument("--arch", default="amd64")
    p.add_argument("--variant", default="")
    p.add_argument("--owner", action="append", default=[])
    p.add_argument("--multi-arch", action="store_true")
    a = p.parse_args()

    if not os.path.isdir(a.rootfs):
        fail(f"--rootfs {a.rootfs}: not a directory")
    if ":" not in a.ref:
        fail(f"--ref {a.ref}: expected NAME:TAG")
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    owners = {}
    for k, v in key_values(a.owner, "--owner").items():
        try:
            uid, gid = (int(x) for x in v.split(":"))
        except ValueError:
            fail(f"--owner {k}={v}: expected PATH=UID:GID")
        owners[k.strip("/")] = (uid, gid)

    os.makedirs(os.path.join(a.layout, "blobs", "sha256"), exist_ok=True)
    tar = layer_tar(a.rootfs, epoch, owners)
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, filename="") as z:
        z.write(tar)
    layer = write_blob(a.layout, gz.getvalue())
    layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"

    created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    config = {
        "created": created,
        "architecture": a.arch,
        "os": "linux",
        **({"variant": a.variant} if a.variant else {}),
        "config": {
            "Entrypoint": [a.entrypoint],
            "Cmd": a.cmd or None,
            "Env": [f"{k}={v}" for k, v in sorted(key_values(a.env, "--env").items())] or None,
            "Labels": key_values(a.label, "--label") or None,
            "WorkingDir": a.workdir,
        },
        "rootfs": {"type": "layers",
                   "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
        "history": [{"created": created, "created_by": "scripts/build-images.sh"}],
    }
    if a.user:
        config["config"]["User"] = a.user
    config["config"] = {k: v for k, v in config["config"].items() if v is not None}
    cfg = write_blob(a.layout, canonical(config))
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cfg,
        "layers": [layer],
        "annotations": {k: v for k, v in key_values(a.label, "--label").items()
                        if k.startswith("org.opencontainers.image.")},
    }
    if not manifest["annotations"]:
        del manifest["annotations"]
    man = write_blob(a.layout, canonical(manifest))
    man["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    man["platform"] = {"architecture": a.arch, "os": "linux",
                       **({"variant": a.variant} if a.variant else {})}

    tag = a.ref.rsplit(":", 1)[1]
    index_path = os.path.join(a.layout, "index.json")
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": []}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    entry = man
    if a.multi_arch:
        # The tag's image index: the other platforms' manifests as they were, this one's new.
        platforms = []
        for m in index.get("manifests", []):
            if (m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag and
                    m.get("mediaType") == "application/vnd.oci.image.index.v1+json"):
                with open(os.path.join(a.layout, "blobs", "sha256",
                                       m["digest"].split(":", 1)[1]), "rb") as f:
                    platforms = json.load(f)["manifests"]
        platforms = [m for m in platforms if m.get("platform") != man["platform"]] + [man]
        platforms.sort(key=lambda m: (m["platform"]["architecture"],
                                      m["platform"].get("variant", "")))
        entry = write_blob(a.layout, canonical({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": platforms}))
        entry["mediaType"] = "application/vnd.oci.image.index.v1+json"
    index["manifests"] = [m for m in index.get("manifests", [])
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                          != tag]
    entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index["manifests"].append(entry)
    with open(index_path + ".tmp", "wb") as f:
        f.write(canonical(index))
    os.replace(index_path + ".tmp", index_path)
    if a.multi_arch:
        collect_garbage(a.layout, index)
    with open(os.path.join(a.layout, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    print(man["digest"])


if __name__ == "__main__":
    main()
