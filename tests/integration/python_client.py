#!/usr/bin/env python3
"""The official Kubernetes Python client (python3-kubernetes) against cloudcore: list, create,
patch, delete, a watch from a resourceVersion that sees later changes, and CustomObjectsApi on
KubeEdge devices. Run by python_client_test with KUBECONFIG set; prints one line per check and
exits non-zero (with the reason) on the first failure."""
import sys

from kubernetes import client, config, watch


def check(cond, what):
    if not cond:
        print("FAIL: " + what, flush=True)
        sys.exit(1)
    print("ok: " + what, flush=True)


config.load_kube_config()
core = client.CoreV1Api()
ns = "default"

names = [n.metadata.name for n in core.list_namespace().items]
check("default" in names and "kube-system" in names, "list namespaces: %s" % names)

start = core.list_namespaced_config_map(ns)
rv = start.metadata.resource_version
check(rv, "list returns a resourceVersion")

cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-cm", labels={"app": "py"}),
                        data={"a": "1"})
created = core.create_namespaced_config_map(ns, cm)
check(created.metadata.uid and created.data == {"a": "1"}, "create a ConfigMap")

patched = core.patch_namespaced_config_map("py-cm", ns, {"data": {"b": "2"}})
check(patched.data == {"a": "1", "b": "2"}, "patch merges: %s" % patched.data)

listed = core.list_namespaced_config_map(ns, label_selector="app=py")
check([c.metadata.name for c in listed.items] == ["py-cm"], "list with a label selector")

# Changes after `rv` were made above; a watch from rv must stream them in order and end.
w = watch.Watch()
seen = []
for event in w.stream(core.list_namespaced_config_map, ns, resource_version=rv,
                      timeout_seconds=5):
    if event["object"].metadata.name == "py-cm":
        seen.append((event["type"], dict(event["object"].data or {})))
    if len(seen) == 2:
        w.stop()
check(seen == [("ADDED", {"a": "1"}), ("MODIFIED", {"a": "1", "b": "2"})],
      "watch from a resourceVersion sees later changes: %s" % seen)

core.delete_namespaced_config_map("py-cm", ns)
try:
    core.read_namespaced_config_map("py-cm", ns)
    check(False, "deleted ConfigMap is gone")
except client.exceptions.ApiException as e:
    check(e.status == 404, "deleted ConfigMap is gone (404)")

custom = client.CustomObjectsApi()
group, version = "devices.kubeedge.io", "v1beta1"
custom.create_namespaced_custom_object(group, version, ns, "devicemodels", {
    "apiVersion": group + "/" + version, "kind": "DeviceModel",
    "metadata": {"name": "py-model"},
    "spec": {"properties": [{"name": "temp", "type": "INT", "accessMode": "ReadOnly"}]}})
custom.create_namespaced_custom_object(group, version, ns, "devices", {
    "apiVersion": group + "/" + version, "kind": "Device",
    "metadata": {"name": "py-dev"},
    "spec": {"deviceModelRef": {"name": "py-model"}, "nodeName": "edge-1"}})
devices = custom.list_namespaced_custom_object(group, version, ns, "devices")
check([d["metadata"]["name"] for d in devices["items"]] == ["py-dev"], "list devices")
custom.patch_namespaced_custom_object(group, version, ns, "devices", "py-dev",
                                      {"metadata": {"labels": {"zone": "a"}}})
dev = custom.get_namespaced_custom_object(group, version, ns, "devices", "py-dev")
check(dev["metadata"]["labels"] == {"zone": "a"} and dev["spec"]["nodeName"] == "edge-1",
      "patch a device")
custom.delete_namespaced_custom_object(group, version, ns, "devices", "py-dev")
devices = custom.list_namespaced_custom_object(group, version, ns, "devices")
check(devices["items"] == [], "delete a device")
print("all checks passed")
