// The real kubectl (v1.32, /usr/bin/kubectl) against cloudcore over HTTPS with the admin
// kubeconfig cloudcore writes.
#include <signal.h>

#include <iterator>
#include <sstream>
#include <thread>

#include "tests/integration/cloud_fixture.h"
#include "tests/integration/thermometer_manifests.h"
#include "tests/testing/eventually.h"

namespace ep::testing {
namespace {

class KubectlCompatTest : public CloudFixture {
 protected:
  void SetUp() override {
    if (access("/usr/bin/kubectl", X_OK) != 0) GTEST_SKIP() << "kubectl is not installed";
    CloudFixture::SetUp();
  }

  std::vector<std::string> base() {
    return {"/usr/bin/kubectl", "--cache-dir=" + dir_.path() + "/kcache",
            "--kubeconfig=" + kubeconfig()};
  }

  CommandResult kubectl(std::vector<std::string> args, const std::string& stdinText = "") {
    auto argv = base();
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, stdinText, std::chrono::seconds(60));
  }
};

const char* kDeployment = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox:1.36
        env:
        - name: MODE
          value: edge
        - name: LEVEL
          value: "1"
        ports:
        - containerPort: 8080
)";

// The thermometer DeviceModel and Device thermo-1 on edge-1 (as the device tests apply them).
const char* kDevice = ep::testing::kThermometerManifests;

const char* kSettings =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n";

TEST_F(KubectlCompatTest, ApiResourcesListsBuiltinAndKubeEdgeKinds) {
  auto r = kubectl({"api-resources"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("pods"), std::string::npos);
  EXPECT_NE(r.out.find("po "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("deployments"), std::string::npos);
  EXPECT_NE(r.out.find("devices.kubeedge.io/v1beta1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sedna.io/v1alpha1"), std::string::npos);
}

TEST_F(KubectlCompatTest, ApplyCreateThenUpdateBuiltinAndCustomKinds) {
  auto created = kubectl({"apply", "-f", writeFile("deploy.yaml", kDeployment)});
  ASSERT_EQ(created.exitCode, 0) << created.out << created.err;
  EXPECT_NE(created.out.find("deployment.apps/web created"), std::string::npos) << created.out;

  // Strategic merge patch: change an image, drop an env var, keep the other.
  std::string changed = kDeployment;
  changed.replace(changed.find("busybox:1.36"), 12, "busybox:1.37");
  changed.erase(changed.find("        - name: LEVEL"),
                std::string("        - name: LEVEL\n          value: \"1\"\n").size());
  auto updated = kubectl({"apply", "-f", writeFile("deploy2.yaml", changed)});
  ASSERT_EQ(updated.exitCode, 0) << updated.out << updated.err;
  EXPECT_NE(updated.out.find("deployment.apps/web configured"), std::string::npos) << updated.out;
  auto obj = getJson("/apis/apps/v1/namespaces/default/deployments/web");
  const auto& c = obj["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["image"], "busybox:1.37");
  ASSERT_EQ(c["env"].size(), 1u) << c.dump();
  EXPECT_EQ(c["env"][0]["name"], "MODE");
  EXPECT_EQ(obj["metadata"]["generation"], 2);

  auto same = kubectl({"apply", "-f", writeFile("deploy3.yaml", changed)});
  ASSERT_EQ(same.exitCode, 0) << same.err;
  EXPECT_NE(same.out.find("unchanged"), std::string::npos) << same.out;

  auto dev = kubectl({"apply", "-f", writeFile("device.yaml", kDevice)});
  ASSERT_EQ(dev.exitCode, 0) << dev.out << dev.err;
  EXPECT_NE(dev.out.find("device.devices.kubeedge.io/thermo-1 created"), std::string::npos)
      << dev.out;
  std::string devChanged = kDevice;
  devChanged.replace(devChanged.find("nodeName: edge-1"), 16, "nodeName: edge-2");
  auto dev2 = kubectl({"apply", "-f", writeFile("device2.yaml", devChanged)});
  ASSERT_EQ(dev2.exitCode, 0) << dev2.out << dev2.err;
  EXPECT_NE(dev2.out.find("device.devices.kubeedge.io/thermo-1 configured"), std::string::npos)
      << dev2.out;
  EXPECT_EQ(
      getJson("/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1")["spec"]
                                                                                      ["nodeName"],
      "edge-2");
}

// kubectl apply --server-side from an empty store and again unchanged; after kubectl scale
// (another manager) changed replicas, a different value conflicts naming the field and its
// manager, --force-conflicts takes it; a manifest that dropped an env var removes it; custom
// kinds too; an object first applied client-side moves to server-side apply as kubectl expects.
TEST_F(KubectlCompatTest, ServerSideApplyOwnsFieldsAndReportsConflicts) {
  const std::string file = writeFile("ssa.yaml", kDeployment);
  auto created = kubectl({"apply", "--server-side", "-f", file});
  ASSERT_EQ(created.exitCode, 0) << created.out << created.err;
  EXPECT_EQ(created.out, "deployment.apps/web serverside-applied\n");
  auto again = kubectl({"apply", "--server-side", "-f", file});
  ASSERT_EQ(again.exitCode, 0) << again.out << again.err;
  EXPECT_EQ(again.out, "deployment.apps/web serverside-applied\n");
  const std::string path = "/apis/apps/v1/namespaces/default/deployments/web";
  auto obj = getJson(path);
  EXPECT_EQ(obj["metadata"]["managedFields"][0]["manager"], "kubectl");
  EXPECT_EQ(obj["metadata"]["managedFields"][0]["operation"], "Apply");
  EXPECT_EQ(obj["metadata"]["generation"], 1);

  auto fields = kubectl({"get", "deploy", "web", "-o", "yaml", "--show-managed-fields"});
  ASSERT_EQ(fields.exitCode, 0) << fields.err;
  EXPECT_NE(fields.out.find("f:replicas: {}"), std::string::npos) << fields.out;
  EXPECT_NE(fields.out.find("k:{\"name\":\"web\"}:"), std::string::npos) << fields.out;

  auto scaled = kubectl({"scale", "deploy/web", "--replicas=5"});
  ASSERT_EQ(scaled.exitCode, 0) << scaled.out << scaled.err;
  auto conflict = kubectl({"apply", "--server-side", "-f", file});
  EXPECT_NE(conflict.exitCode, 0) << conflict.out;
  EXPECT_NE(conflict.err.find("Apply failed with 1 conflict: conflict with"), std::string::npos)
      << conflict.err;
  EXPECT_NE(conflict.err.find(": .spec.replicas"), std::string::npos) << conflict.err;
  EXPECT_EQ(getJson(path)["spec"]["replicas"], 5);

  std::string changed = kDeployment;
  changed.erase(changed.find("        - name: LEVEL"),
                std::string("        - name: LEVEL\n          value: \"1\"\n").size());
  auto forced = kubectl(
      {"apply", "--server-side", "--force-conflicts", "-f", writeFile("ssa2.yaml", changed)});
  ASSERT_EQ(forced.exitCode, 0) << forced.out << forced.err;
  obj = getJson(path);
  EXPECT_EQ(obj["spec"]["replicas"], 2);
  const auto& c = obj["spec"]["template"]["spec"]["containers"][0];
  ASSERT_EQ(c["env"].size(), 1u) << c.dump();
  EXPECT_EQ(c["env"][0]["name"], "MODE");

  auto dev = kubectl({"apply", "--server-side", "-f", writeFile("ssa-dev.yaml", kDevice)});
  ASSERT_EQ(dev.exitCode, 0) << dev.out << dev.err;
  EXPECT_NE(dev.out.find("device.devices.kubeedge.io/thermo-1 serverside-applied"),
            std::string::npos)
      << dev.out;

  // Client-side first, then server-side with a change: kubectl hands the fields over.
  ASSERT_EQ(kubectl({"apply", "-f", writeFile("csa.yaml", kSettings)}).exitCode, 0);
  std::string settings2 = kSettings;
  settings2.replace(settings2.find("a: \"1\""), 6, "a: \"2\"");
  auto upgraded = kubectl({"apply", "--server-side", "-f", writeFile("csa2.yaml", settings2)});
  ASSERT_EQ(upgraded.exitCode, 0) << upgraded.out << upgraded.err;
  EXPECT_EQ(getJson("/api/v1/namespaces/default/configmaps/settings")["data"]["a"], "2");
}

// Server-side field validation: kubectl's default (Strict) refuses a typo naming the field,
// --validate=warn creates the object without it and prints kubectl's warning.
TEST_F(KubectlCompatTest, TyposAreRefusedOrWarnedAsFieldValidationSays) {
  std::string typo = kDeployment;
  typo.replace(typo.find("  replicas: 2"), 13, "  replica: 2");
  auto strict = kubectl({"apply", "-f", writeFile("typo.yaml", typo)});
  EXPECT_NE(strict.exitCode, 0);
  EXPECT_NE(strict.err.find("strict decoding error: unknown field \"spec.replica\""),
            std::string::npos)
      << strict.err;
  getJson("/apis/apps/v1/namespaces/default/deployments/web", 404);

  auto warn = kubectl({"apply", "--validate=warn", "-f", writeFile("typo.yaml", typo)});
  ASSERT_EQ(warn.exitCode, 0) << warn.err;
  EXPECT_NE(warn.err.find("Warning: unknown field \"spec.replica\""), std::string::npos)
      << warn.err;
  auto obj = getJson("/apis/apps/v1/namespaces/default/deployments/web");
  EXPECT_FALSE(obj["spec"].contains("replica"));
}

// /openapi/v2 (gnostic protobuf) and the v3 schemas: a `kind: List` export re-applies through
// kubectl's client-side validation, an invalid item is named, and explain reaches nested
// fields of built-in and KubeEdge kinds.
TEST_F(KubectlCompatTest, ListManifestsValidateAndExplainWorks) {
  ASSERT_EQ(kubectl({"apply", "-f", writeFile("deploy.yaml", kDeployment)}).exitCode, 0);
  ASSERT_EQ(kubectl({"apply", "-f", writeFile("settings.yaml", kSettings)}).exitCode, 0);
  auto exported = kubectl({"get", "deployments,configmaps", "-o", "yaml"});
  ASSERT_EQ(exported.exitCode, 0) << exported.err;
  ASSERT_NE(exported.out.find("kind: List"), std::string::npos) << exported.out;
  auto reapplied = kubectl({"apply", "-f", writeFile("list.yaml", exported.out)});
  ASSERT_EQ(reapplied.exitCode, 0) << reapplied.out << reapplied.err;
  EXPECT_NE(reapplied.out.find("deployment.apps/web"), std::string::npos) << reapplied.out;

  std::string bad = exported.out;
  bad.replace(bad.find("    replicas: 2"), 15, "    replicaz: 2");
  auto refused = kubectl({"apply", "-f", writeFile("bad.yaml", bad)});
  EXPECT_NE(refused.exitCode, 0);
  EXPECT_NE(refused.err.find("unknown field \"replicaz\" in io.k8s.api.apps.v1.DeploymentSpec"),
            std::string::npos)
      << refused.err;

  auto ports = kubectl({"explain", "pods.spec.containers.ports"});
  ASSERT_EQ(ports.exitCode, 0) << ports.err;
  EXPECT_NE(ports.out.find("containerPort\t<integer>"), std::string::npos) << ports.out;
  EXPECT_NE(ports.out.find("protocol\t<string>"), std::string::npos) << ports.out;
  auto deploy = kubectl({"explain", "deployment.spec.strategy.rollingUpdate"});
  ASSERT_EQ(deploy.exitCode, 0) << deploy.err;
  EXPECT_NE(deploy.out.find("maxSurge"), std::string::npos) << deploy.out;
  auto device = kubectl({"explain", "devices.metadata.labels"});
  ASSERT_EQ(device.exitCode, 0) << device.err;
  EXPECT_NE(device.out.find("map[string]string"), std::string::npos) << device.out;
}

// kubectl delete --cascade=orphan keeps the ReplicaSet (without its owner reference) and its
// pods; --cascade=foreground returns once the Deployment is gone, its ReplicaSets and pods with
// it (kubectl waits for the deletion).
TEST_F(KubectlCompatTest, DeleteCascadeOrphanAndForeground) {
  auto countOf = [&](const std::string& path) {
    auto list = getJson(path);
    return list["items"].size();
  };
  const std::string sets = "/apis/apps/v1/namespaces/default/replicasets";
  const std::string podsPath = "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb";
  ASSERT_EQ(kubectl({"apply", "-f", writeFile("deploy.yaml", kDeployment)}).exitCode, 0);
  ASSERT_TRUE(eventually([&] { return countOf(podsPath) == 2; }, std::chrono::seconds(20)));
  auto orphan = kubectl({"delete", "deployment", "web", "--cascade=orphan"});
  ASSERT_EQ(orphan.exitCode, 0) << orphan.err;
  getJson("/apis/apps/v1/namespaces/default/deployments/web", 404);
  auto rs = getJson(sets);
  ASSERT_EQ(rs["items"].size(), 1u);
  EXPECT_FALSE(rs["items"][0]["metadata"].contains("ownerReferences")) << rs.dump();
  EXPECT_EQ(countOf(podsPath), 2u);
  ASSERT_EQ(kubectl({"delete", "replicasets", "--all"}).exitCode, 0);
  ASSERT_TRUE(eventually([&] { return countOf(podsPath) == 0; }, std::chrono::seconds(20)));

  ASSERT_EQ(kubectl({"apply", "-f", writeFile("deploy.yaml", kDeployment)}).exitCode, 0);
  ASSERT_TRUE(eventually([&] { return countOf(podsPath) == 2; }, std::chrono::seconds(20)));
  auto fg = kubectl({"delete", "deployment", "web", "--cascade=foreground", "--timeout=30s"});
  ASSERT_EQ(fg.exitCode, 0) << fg.err;
  getJson("/apis/apps/v1/namespaces/default/deployments/web", 404);
  EXPECT_EQ(countOf(sets), 0u);
  EXPECT_EQ(countOf(podsPath), 0u);
}

TEST_F(KubectlCompatTest, GetShowsServerSideColumns) {
  ASSERT_EQ(kubectl({"apply", "-f", writeFile("deploy.yaml", kDeployment)}).exitCode, 0);
  auto pod = kubectl({"run", "solo", "--image=busybox:1.36", "--restart=Never"});
  ASSERT_EQ(pod.exitCode, 0) << pod.out << pod.err;
  auto pods = kubectl({"get", "po"});
  ASSERT_EQ(pods.exitCode, 0) << pods.err;
  EXPECT_NE(pods.out.find("READY"), std::string::npos) << pods.out;
  EXPECT_NE(pods.out.find("STATUS"), std::string::npos);
  EXPECT_NE(pods.out.find("Pending"), std::string::npos) << pods.out;
  auto deploys = kubectl({"get", "deploy", "-o", "wide"});
  ASSERT_EQ(deploys.exitCode, 0) << deploys.err;
  EXPECT_NE(deploys.out.find("UP-TO-DATE"), std::string::npos) << deploys.out;
  EXPECT_NE(deploys.out.find("busybox:1.36"), std::string::npos) << deploys.out;
  auto all = kubectl({"get", "all"});
  ASSERT_EQ(all.exitCode, 0) << all.err;
  EXPECT_NE(all.out.find("pod/solo"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("deployment.apps/web"), std::string::npos) << all.out;
  auto ns = kubectl({"get", "ns"});
  ASSERT_EQ(ns.exitCode, 0) << ns.err;
  EXPECT_NE(ns.out.find("kube-system"), std::string::npos);
  EXPECT_NE(ns.out.find("Active"), std::string::npos);
}

// coordination.k8s.io/v1 Leases, as leader-election clients and `kubectl get leases` use them.
TEST_F(KubectlCompatTest, LeasesAreServedAndPrinted) {
  const char* kLease = R"(apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: my-controller
spec:
  holderIdentity: replica-a
  leaseDurationSeconds: 15
  acquireTime: "2026-12-06T10:00:00.000000Z"
  renewTime: "2026-12-06T10:00:05.250000Z"
)";
  auto created = kubectl({"apply", "-f", writeFile("lease.yaml", kLease)});
  ASSERT_EQ(created.exitCode, 0) << created.out << created.err;
  auto got = kubectl({"get", "leases"});
  ASSERT_EQ(got.exitCode, 0) << got.err;
  EXPECT_NE(got.out.find("HOLDER"), std::string::npos) << got.out;
  EXPECT_NE(got.out.find("replica-a"), std::string::npos) << got.out;
  auto time = kubectl({"get", "lease", "my-controller", "-o", "jsonpath={.spec.renewTime}"});
  EXPECT_EQ(time.out, "2026-12-06T10:00:05.250000Z") << time.err;
  auto bad = kubectl({"patch", "lease", "my-controller", "--type=merge", "-p",
                      R"({"spec":{"leaseDurationSeconds":0}})"});
  EXPECT_NE(bad.exitCode, 0);
  EXPECT_NE(bad.err.find("spec.leaseDurationSeconds"), std::string::npos) << bad.err;
  auto resources = kubectl({"api-resources", "--api-group=coordination.k8s.io"});
  EXPECT_NE(resources.out.find("leases"), std::string::npos) << resources.out;
}

// kubectl's generators send application/vnd.kubernetes.protobuf bodies (issue 12, part 1).
TEST_F(KubectlCompatTest, CreateGeneratorsAndDrainSendProtobuf) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"create", "namespace", "team"},
        {"create", "configmap", "cfg", "-n", "team", "--from-literal=a=1", "--from-literal=b=2"},
        {"create", "secret", "generic", "db", "-n", "team", "--from-literal=pw=hunter2"},
        {"create", "deployment", "web", "-n", "team", "--image=busybox:1.36", "--replicas=0",
         "--port=8080"},
        {"create", "serviceaccount", "bot", "-n", "team"},
        {"create", "role", "reader", "-n", "team", "--verb=get", "--resource=pods"},
        {"create", "rolebinding", "bot-reader", "-n", "team", "--role=reader",
         "--serviceaccount=team:bot"},
        {"create", "clusterrole", "node-reader", "--verb=list", "--resource=nodes"},
        {"create", "clusterrolebinding", "bot-nodes", "--clusterrole=node-reader",
         "--serviceaccount=team:bot"}}) {
    auto r = kubectl(args);
    EXPECT_EQ(r.exitCode, 0) << args[1] << " " << args[2] << ": " << r.err;
  }
  EXPECT_EQ(kubectl({"get", "cm", "cfg", "-n", "team", "-o", "jsonpath={.data.b}"}).out, "2");
  EXPECT_EQ(kubectl({"get", "secret", "db", "-n", "team", "-o", "jsonpath={.data.pw}"}).out,
            "aHVudGVyMg==");
  auto deploy = kubectl({"get", "deploy", "web", "-n", "team", "-o",
                         "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].ports[0]."
                         "containerPort} {.spec.selector.matchLabels.app}"});
  EXPECT_EQ(deploy.out, "0 8080 web") << deploy.err;
  EXPECT_EQ(kubectl({"get", "rolebinding", "bot-reader", "-n", "team", "-o",
                     "jsonpath={.subjects[0].kind}/{.subjects[0].name} {.roleRef.name}"})
                .out,
            "ServiceAccount/bot reader");
  // A server-side dry run stores nothing.
  auto dry = kubectl(
      {"create", "configmap", "ghost", "--from-literal=a=1", "--dry-run=server", "-o", "name"});
  EXPECT_EQ(dry.exitCode, 0) << dry.err;
  EXPECT_EQ(dry.out, "configmap/ghost\n");
  EXPECT_NE(kubectl({"get", "cm", "ghost"}).exitCode, 0);

  // drain: cordon (a patch), then the pods/eviction subresource (a protobuf Eviction) that
  // discovery lists.
  ASSERT_EQ(kubectl({"create", "-f", "-"}, R"({"apiVersion": "v1", "kind": "Node",
      "metadata": {"name": "drain-me"}})")
                .exitCode,
            0);
  ASSERT_EQ(kubectl({"create", "-f", "-"}, R"({"apiVersion": "v1", "kind": "Pod",
      "metadata": {"name": "evictee", "namespace": "default"},
      "spec": {"nodeName": "drain-me", "containers": [{"name": "c", "image": "busybox:1.36"}]}})")
                .exitCode,
            0);
  auto drain =
      kubectl({"drain", "drain-me", "--force", "--grace-period=0", "--timeout=30s", "-v=6"});
  EXPECT_EQ(drain.exitCode, 0) << drain.out << drain.err;
  EXPECT_NE(drain.out.find("node/drain-me drained"), std::string::npos) << drain.out;
  EXPECT_NE(drain.err.find("POST " + server() +
                           "/api/v1/namespaces/default/pods/evictee/eviction 201 Created"),
            std::string::npos)
      << drain.err;
  EXPECT_NE(kubectl({"get", "pod", "evictee"}).exitCode, 0);
  EXPECT_EQ(kubectl({"get", "node", "drain-me", "-o", "jsonpath={.spec.unschedulable}"}).out,
            "true");
}

// Services (docs/services.md): expose, create service (protobuf), the columns, a dry run, the
// `kubernetes` Service, cluster-info, EndpointSlices and Endpoints following a pod whose status
// is written as its node would, describe, apply --prune with an allowlist.
TEST_F(KubectlCompatTest, ServicesExposeEndpointsAndClusterInfo) {
  ASSERT_EQ(kubectl({"create", "deployment", "web", "--image=busybox:1.36", "--replicas=0",
                     "--port=8080"})
                .exitCode,
            0);
  auto exposed = kubectl(
      {"expose", "deployment", "web", "--port=80", "--target-port=8080", "--type=NodePort"});
  ASSERT_EQ(exposed.exitCode, 0) << exposed.err;
  EXPECT_EQ(exposed.out, "service/web exposed\n");
  auto get = kubectl({"get", "svc", "web"});
  ASSERT_EQ(get.exitCode, 0) << get.err;
  {
    // kubectl's columns (their widths follow the values, e.g. the random cluster IP's length).
    std::istringstream header(get.out.substr(0, get.out.find('\n')));
    std::vector<std::string> columns{std::istream_iterator<std::string>(header), {}};
    EXPECT_EQ(columns, (std::vector<std::string>{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP",
                                                 "PORT(S)", "AGE"}))
        << get.out;
  }
  std::string ip = kubectl({"get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"}).out;
  EXPECT_EQ(ip.rfind("10.", 0), 0u) << ip;
  int nodePort = std::stoi(
      "0" + kubectl({"get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}"}).out);
  EXPECT_GE(nodePort, 30000);
  EXPECT_LE(nodePort, 32767);
  EXPECT_NE(get.out.find("80:" + std::to_string(nodePort) + "/TCP"), std::string::npos) << get.out;

  // edgectl's expose builds the same Service.
  auto viaEdgectl = edgectl({"expose", "deployment", "web", "--port", "81", "--name", "web-e"});
  EXPECT_EQ(viaEdgectl.exitCode, 0) << viaEdgectl.err;
  EXPECT_EQ(viaEdgectl.out, "service/web-e exposed\n");
  EXPECT_EQ(kubectl({"get", "svc", "web-e", "-o",
                     "jsonpath={.spec.selector.app} {.spec.ports[0].targetPort}"})
                .out,
            "web 81");

  // kubectl create service sends protobuf; a taken cluster IP is refused naming the field.
  auto db = kubectl({"create", "service", "clusterip", "db", "--tcp=5432:5432"});
  EXPECT_EQ(db.exitCode, 0) << db.err;
  auto clash =
      kubectl({"create", "service", "clusterip", "db2", "--tcp=5432", "--clusterip=" + ip});
  EXPECT_NE(clash.exitCode, 0);
  EXPECT_NE(clash.err.find("provided IP is already allocated"), std::string::npos) << clash.err;
  auto dry = kubectl({"create", "service", "nodeport", "ghost", "--tcp=80", "--dry-run=server",
                      "-o", "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}"});
  EXPECT_EQ(dry.exitCode, 0) << dry.err;
  {
    std::string dryIp = dry.out.substr(0, dry.out.find(' '));
    std::string dryPort = dry.out.substr(dry.out.find(' ') + 1);
    EXPECT_EQ(dryIp.rfind("10.", 0), 0u) << dry.out;          // a cluster IP was chosen...
    EXPECT_GE(std::atoi(dryPort.c_str()), 30000) << dry.out;  // ...and a node port
  }
  EXPECT_NE(kubectl({"get", "svc", "ghost"}).exitCode, 0);

  EXPECT_EQ(kubectl({"get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"}).out,
            "10.96.0.1");
  auto info = kubectl({"cluster-info"});
  EXPECT_EQ(info.exitCode, 0) << info.err;
  EXPECT_NE(info.out.find("is running at " + server()), std::string::npos) << info.out;

  // A pod that matches, bound to a node, gets its IP and Ready condition written as the node's
  // report would: the EndpointSlice and the Endpoints follow.
  ASSERT_EQ(kubectl({"create", "-f", "-"}, R"({"apiVersion": "v1", "kind": "Pod",
      "metadata": {"name": "web-1", "labels": {"app": "web"}},
      "spec": {"nodeName": "edge-x", "containers": [{"name": "web", "image": "busybox:1.36",
               "ports": [{"containerPort": 8080}]}]}})")
                .exitCode,
            0);
  auto status = kubectl({"patch", "pod", "web-1", "--subresource=status", "--type=merge", "-p",
                         R"({"status": {"phase": "Running", "podIP": "10.244.1.7",
                            "conditions": [{"type": "Ready", "status": "True"}]}})"});
  ASSERT_EQ(status.exitCode, 0) << status.err;
  ASSERT_TRUE(eventually([&] {
    return kubectl({"get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o",
                    "jsonpath={.items[0].endpoints[0].addresses[0]}"})
               .out == "10.244.1.7";
  })) << kubectl({"get", "endpointslices", "-o", "yaml"}).out;
  auto slices = kubectl({"get", "endpointslices", "-l", "kubernetes.io/service-name=web"});
  EXPECT_NE(slices.out.find("ADDRESSTYPE   PORTS   ENDPOINTS"), std::string::npos) << slices.out;
  EXPECT_NE(slices.out.find("8080    10.244.1.7"), std::string::npos) << slices.out;
  EXPECT_EQ(
      kubectl({"get", "endpoints", "web", "-o", "jsonpath={.subsets[0].addresses[0].ip}"}).out,
      "10.244.1.7");
  auto describe = kubectl({"describe", "svc", "web"});
  EXPECT_EQ(describe.exitCode, 0) << describe.err;
  EXPECT_NE(describe.out.find("10.244.1.7:8080"), std::string::npos) << describe.out;

  // apply --prune with an allowlist (the default allowlist names kinds not served here).
  const char* two =
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: p1\n  labels: {set: p}\nspec:\n"
      "  ports: [{port: 80}]\n---\n"
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: p2\n  labels: {set: p}\nspec:\n"
      "  ports: [{port: 80}]\n";
  ASSERT_EQ(kubectl({"apply", "-f", writeFile("two.yaml", two)}).exitCode, 0);
  std::string one(two, std::string(two).find("---"));
  auto pruned = kubectl({"apply", "--prune", "-l", "set=p", "--prune-allowlist=core/v1/Service",
                         "-f", writeFile("one.yaml", one)});
  EXPECT_EQ(pruned.exitCode, 0) << pruned.err;
  EXPECT_NE(pruned.out.find("service/p2 pruned"), std::string::npos) << pruned.out;

  // Deleting the Service deletes what the controller made for it.
  ASSERT_EQ(kubectl({"delete", "svc", "web"}).exitCode, 0);
  EXPECT_TRUE(eventually([&] {
    return kubectl({"get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "name"})
               .out.empty() &&
           kubectl({"get", "endpoints", "web"}).exitCode != 0;
  }));
}

TEST_F(KubectlCompatTest, DescribeAndDelete) {
  ASSERT_EQ(kubectl({"apply", "-f", writeFile("deploy.yaml", kDeployment)}).exitCode, 0);
  ASSERT_EQ(kubectl({"create", "-f", "-"}, kSettings).exitCode, 0);
  auto d = kubectl({"describe", "configmap", "settings"});
  ASSERT_EQ(d.exitCode, 0) << d.err;
  EXPECT_NE(d.out.find("Name:"), std::string::npos);
  EXPECT_NE(d.out.find("settings"), std::string::npos);
  auto dd = kubectl({"describe", "deployment", "web"});
  ASSERT_EQ(dd.exitCode, 0) << dd.out << dd.err;
  EXPECT_NE(dd.out.find("busybox:1.36"), std::string::npos) << dd.out;
  auto del = kubectl({"delete", "configmap", "settings"});
  ASSERT_EQ(del.exitCode, 0) << del.out << del.err;
  EXPECT_NE(del.out.find("deleted"), std::string::npos);
  auto gone = kubectl({"get", "configmap", "settings"});
  EXPECT_NE(gone.exitCode, 0);
  EXPECT_NE(gone.err.find("NotFound"), std::string::npos) << gone.err;
  auto delDeploy = kubectl({"delete", "-f", writeFile("deploy.yaml", kDeployment)});
  EXPECT_EQ(delDeploy.exitCode, 0) << delDeploy.out << delDeploy.err;
}

TEST_F(KubectlCompatTest, GetWatchPrintsChanges) {
  auto argv = base();
  for (const char* a : {"get", "configmaps", "-w"}) argv.push_back(a);
  ASSERT_EQ(
      kubectl({"create", "-f", "-"}, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: listed\n")
          .exitCode,
      0);
  Process watch(argv, dir_.path() + "/kwatch.log");
  ASSERT_TRUE(watch.start());
  // Created only after the initial list was printed: it can only arrive through the watch.
  ASSERT_TRUE(eventually([&] { return watch.log().find("listed") != std::string::npos; }))
      << watch.log();
  auto created = kubectl({"create", "-f", "-"},
                         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\n");
  ASSERT_EQ(created.exitCode, 0) << created.err;
  EXPECT_TRUE(eventually([&] { return watch.log().find("watched") != std::string::npos; }))
      << watch.log();
  EXPECT_TRUE(watch.running()) << watch.log();
  watch.stop(SIGINT);
}

// edgectl's -o jsonpath= prints what kubectl prints for the same objects and template, and
// fails where kubectl fails.
TEST_F(KubectlCompatTest, EdgectlJsonPathPrintsWhatKubectlPrints) {
  ASSERT_EQ(kubectl({"apply", "-f", writeFile("deploy.yaml", kDeployment)}).exitCode, 0);
  ASSERT_EQ(kubectl({"apply", "-f", writeFile("settings.yaml", kSettings)}).exitCode, 0);
  struct Case {
    std::vector<std::string> what;
    std::string tmpl;
    bool fails = false;
  };
  const std::vector<Case> cases = {
      {{"deploy", "web"}, "{.metadata.name} {.spec.replicas}{\"\\n\"}"},
      {{"deploy", "web"}, "{.spec.template.spec.containers[*].name}"},
      {{"deploy", "web"}, "{.spec.template.spec.containers[0].ports}"},
      {{"deploy", "web"}, "{.spec.template.spec.containers[?(@.name==\"web\")].image}"},
      {{"deploy", "web"}, "{..app}|{.metadata['name','labels.app']}|{.nope}"},
      {{"deploy", "web"}, "{.spec.template.spec.containers[3]}", true},
      {{"deploy", "web"}, "{.metadata.name", true},
      {{"deploy,cm"}, "{range .items[*]}{.kind}/{.metadata.name}{'\\t'}{end}"},
      {{"cm", "settings"}, "{.data}"},
      {{"namespaces"}, "{.items[*].metadata.labels.kubernetes\\.io/metadata\\.name}"},
  };
  for (const auto& [what, tmpl, fails] : cases) {
    std::vector<std::string> args = {"get"};
    args.insert(args.end(), what.begin(), what.end());
    args.push_back("-o");
    args.push_back("jsonpath=" + tmpl);
    auto k = kubectl(args);
    auto e = edgectl(args);
    EXPECT_EQ(e.exitCode == 0, k.exitCode == 0)
        << tmpl << "\nkubectl: " << k.err << "\nedgectl: " << e.err;
    EXPECT_EQ(e.out, k.out) << tmpl;
    // The comparison means something only if kubectl did what the case expects.
    EXPECT_EQ(k.exitCode != 0, fails) << tmpl << ": " << k.err;
    if (!fails) {
      EXPECT_FALSE(k.out.empty()) << tmpl;
    }
  }
}

}  // namespace
}  // namespace ep::testing
