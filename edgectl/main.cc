// edgectl: the operator CLI for edgeplane. Command-line parsing lives here; each verb is
// implemented in its own unit (apply.cc, get.cc, describe.cc, delete.cc, discovery.cc,
// rollout.cc).

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

#include "common/clock.h"
#include "edgectl/apply.h"
#include "edgectl/config.h"
#include "edgectl/create.h"
#include "edgectl/data.h"
#include "edgectl/delete.h"
#include "edgectl/describe.h"
#include "edgectl/discovery.h"
#include "edgectl/expose.h"
#include "edgectl/get.h"
#include "edgectl/logs_exec.h"
#include "edgectl/model.h"
#include "edgectl/port_forward.h"
#include "edgectl/rollout.h"
#include "edgectl/token.h"
#include "edgectl/top.h"
#include "edgectl/upgrade.h"

namespace ep::edgectl {
namespace {

struct GlobalFlags {
  std::string server;
  std::string token;
  std::string config;
  std::string kubeconfig;
  std::string context;
  std::string certificateAuthority;
  std::string clientCertificate;
  std::string clientKey;
  bool insecureSkipTlsVerify = false;
  std::string ns;
  bool allNamespaces = false;
  std::string requestTimeout;
  int verbosity = 0;
};

std::string envOr(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

extern "C" void onInterrupt(int) {
  // Ctrl-C ends a watch successfully, like kubectl. Output is flushed after every event.
  _exit(0);
}

int run(int argc, char** argv) {
  CLI::App app{"edgectl controls an edgeplane cluster through cloudcore's API.", "edgectl"};
  app.require_subcommand(1);
  app.fallthrough();
  GlobalFlags g;
  app.add_option("-s,--server", g.server,
                 "Address of cloudcore's API (https://host:port); also $EDGECTL_SERVER");
  app.add_option("--token", g.token, "Bearer token for the API server; also $EDGECTL_TOKEN");
  app.add_option("--kubeconfig", g.kubeconfig,
                 "Path to the kubeconfig file (default $KUBECONFIG, then ~/.kube/config)");
  app.add_option("--context", g.context, "The kubeconfig context to use");
  app.add_option("--certificate-authority", g.certificateAuthority,
                 "Path to a CA certificate file for the server");
  app.add_option("--client-certificate", g.clientCertificate,
                 "Path to a client certificate file for TLS");
  app.add_option("--client-key", g.clientKey, "Path to a client key file for TLS");
  app.add_flag("--insecure-skip-tls-verify", g.insecureSkipTlsVerify,
               "Do not verify the server's certificate (insecure)");
  app.add_option("--config", g.config, "edgeplane config file (default ~/.edgeplane/config)");
  app.add_option("-n,--namespace", g.ns, "Namespace scope for this request");
  app.add_flag("-A,--all-namespaces", g.allNamespaces,
               "List or act on objects across all namespaces");
  app.add_option("--request-timeout", g.requestTimeout,
                 "Time to wait for one server request (e.g. 5s, 1m; 0 = no timeout)");
  app.add_option("-v,--v", g.verbosity, "Log level (6 logs every request)");

  // apply
  ApplyOptions applyOpts;
  auto* apply = app.add_subcommand("apply", "Create or update objects from manifests");
  apply->add_option("-f,--filename", applyOpts.files, "File, directory or - (stdin)")->required();
  apply->add_flag("-R,--recursive", applyOpts.recursive, "Descend into subdirectories of -f");
  apply->add_flag("--server-side", applyOpts.serverSide,
                  "Apply on the server (field ownership in metadata.managedFields)");
  apply->add_flag("--force-conflicts", applyOpts.forceConflicts,
                  "With --server-side: take the fields other managers own");
  apply->add_option("--field-manager", applyOpts.fieldManager,
                    "Name of the manager owning the applied fields");

  // get
  GetOptions getOpts;
  auto* get = app.add_subcommand("get", "Display one or many objects");
  get->add_option("args", getOpts.args, "KIND [NAME...] | KIND/NAME...");
  get->add_option("-o,--output", getOpts.output,
                  "Output format: wide|yaml|json|name|jsonpath=TEMPLATE|jsonpath-file=FILE");
  get->add_option("-l,--selector", getOpts.labelSelector, "Label selector (e.g. app=web)");
  get->add_option("--field-selector", getOpts.fieldSelector, "Field selector");
  get->add_flag("-w,--watch", getOpts.watch, "After listing, watch for changes");
  get->add_flag("--watch-only", getOpts.watchOnly, "Watch for changes without listing first");
  get->add_flag("--output-watch-events", getOpts.outputWatchEvents,
                "Add an EVENT column to watch output");
  get->add_flag("--show-labels", getOpts.showLabels, "Show labels as the last column");
  get->add_flag("--no-headers", getOpts.noHeaders, "Omit table headers");
  get->add_flag("--ignore-not-found", getOpts.ignoreNotFound,
                "Treat missing named objects as success");
  get->add_flag("--show-managed-fields", getOpts.showManagedFields,
                "Keep metadata.managedFields in json and yaml output");

  // describe
  DescribeOptions describeOpts;
  auto* describe = app.add_subcommand("describe", "Show details of objects");
  describe->add_option("args", describeOpts.args, "KIND [NAME...] | KIND/NAME...");
  describe->add_option("-l,--selector", describeOpts.labelSelector, "Label selector");
  describe->add_flag("--show-events", describeOpts.showEvents, "Show related events")
      ->default_val(true);

  // delete
  DeleteOptions deleteOpts;
  std::string deleteTimeout;
  bool deleteNow = false;
  auto* del = app.add_subcommand("delete", "Delete objects by name, selector or manifest");
  del->add_option("args", deleteOpts.args, "KIND NAME... | KIND/NAME... | KIND -l SELECTOR");
  del->add_option("-f,--filename", deleteOpts.files, "File, directory or - (stdin)");
  del->add_flag("-R,--recursive", deleteOpts.recursive, "Descend into subdirectories of -f");
  del->add_option("-l,--selector", deleteOpts.labelSelector, "Label selector");
  del->add_flag("--all", deleteOpts.all, "Delete every object of the kind in the namespace");
  del->add_flag("--ignore-not-found", deleteOpts.ignoreNotFound,
                "Treat missing objects as success");
  del->add_flag("--wait", deleteOpts.wait, "Wait until the objects are gone (default true)")
      ->default_val(true);
  del->add_option("--cascade", deleteOpts.cascade, "background|foreground|orphan");
  del->add_option("--grace-period", deleteOpts.gracePeriod,
                  "Seconds given to the object to terminate (-1: default)");
  del->add_flag("--now", deleteNow, "Same as --grace-period=1");
  del->add_option("--timeout", deleteTimeout, "How long --wait waits (default 60s)");

  // logs
  LogsOptions logsOpts;
  auto* logs = app.add_subcommand("logs", "Print the logs of a container in a pod");
  logs->add_option("args", logsOpts.args, "POD | pod/POD");
  logs->add_option("-c,--container", logsOpts.container, "Container (default: the only one)");
  logs->add_flag("-f,--follow", logsOpts.follow, "Stream the log until the container exits");
  logs->add_option("--tail", logsOpts.tail, "Lines of recent log to show (-1: all)");
  logs->add_flag("-p,--previous", logsOpts.previous, "The previous instance of the container");
  logs->add_flag("--timestamps", logsOpts.timestamps, "Prefix each line with its timestamp");
  logs->add_option("--since", logsOpts.since, "Only newer logs, e.g. 5s, 2m, 3h");
  logs->add_option("--limit-bytes", logsOpts.limitBytes, "Maximum bytes of log to return");

  // exec
  ExecOptions execOpts;
  auto* exec = app.add_subcommand("exec", "Run a command in a container (non-interactive)");
  exec->add_option("args", execOpts.args, "POD -- COMMAND [ARGS...]");
  exec->add_option("-c,--container", execOpts.container, "Container (default: the only one)");
  exec->add_option("--timeout", execOpts.timeoutSeconds,
                   "Seconds the command may run on the node (0: the node's default)");

  // port-forward
  PortForwardOptions pfOpts;
  auto* portForward =
      app.add_subcommand("port-forward", "Forward one or more local ports to a pod");
  portForward->add_option("args", pfOpts.args, "TYPE/NAME [LOCAL_PORT:]REMOTE_PORT...")->required();
  portForward->add_option("--address", pfOpts.addresses,
                          "Addresses to listen on (comma separated; default localhost)");

  // data
  DataOptions dataOpts;
  auto* data = app.add_subcommand(
      "data",
      "Print the values a device reported (or a rule carried, or a node uploaded) to the cloud");
  data->add_option("args", dataOpts.args, "DEVICE | device/DEVICE | rule/NAME | node/NAME");
  data->add_option("--property", dataOpts.property, "Only this property");
  data->add_option("--since", dataOpts.since, "Only values of the last 30s, 10m, 2h, ...");
  data->add_option("--limit", dataOpts.limit, "The newest N values (default 1000, at most 10000)");
  data->add_option("-o,--output", dataOpts.output, "Output format: json|csv (default: a table)");
  data->add_flag("--no-headers", dataOpts.noHeaders, "Omit the header line");

  // api-resources
  ApiResourcesOptions arOpts;
  auto* ar = app.add_subcommand("api-resources", "List the resource types the server serves");
  ar->add_option("-o,--output", arOpts.output, "Output format: wide|name");
  ar->add_option("--namespaced", arOpts.namespacedFilter,
                 "true: only namespaced kinds; false: only cluster-scoped kinds");
  auto* apiGroupOpt = ar->add_option("--api-group", arOpts.apiGroup, "Only this API group");
  ar->add_flag("--no-headers", arOpts.noHeaders, "Omit table headers");

  // rollout, scale
  RolloutOptions rolloutOpts;
  std::vector<std::string> rolloutArgs;
  std::string rolloutTimeout;
  auto* rollout = app.add_subcommand("rollout", "Manage the rollout of a deployment");
  rollout->add_option("args", rolloutArgs, "status|history|undo deployment/NAME")->required();
  rollout->add_option("--timeout", rolloutTimeout,
                      "status: how long to wait before giving up (e.g. 5m; 0 = forever)");
  rollout->add_flag("-w,--watch", rolloutOpts.watch, "status: wait until the rollout finishes")
      ->default_val(true);
  rollout->add_option("--to-revision", rolloutOpts.toRevision,
                      "undo: the revision to roll back to (default: the previous one)");
  ScaleOptions scaleOpts;
  auto* scale = app.add_subcommand("scale", "Set a new size for a deployment or replica set");
  scale->add_option("args", scaleOpts.args, "deployment/NAME | replicaset/NAME")->required();
  scale->add_option("--replicas", scaleOpts.replicas, "The new desired number of replicas")
      ->required();

  // create secret docker-registry, set image
  CreateSecretOptions createOpts;
  std::vector<std::string> createArgs;
  auto* create =
      app.add_subcommand("create", "Create an object from flags (secret docker-registry)");
  create->add_option("args", createArgs, "secret docker-registry NAME")->required();
  create->add_option("--docker-server", createOpts.dockerServer,
                     "Server location for the registry (default https://index.docker.io/v1/)");
  create->add_option("--docker-username", createOpts.dockerUsername, "Username for the registry");
  create->add_option("--docker-password", createOpts.dockerPassword, "Password for the registry");
  create->add_option("--docker-email", createOpts.dockerEmail, "Email for the registry");
  create->add_option("--dry-run", createOpts.dryRun, "none, client (print only) or server");
  create->add_option("-o,--output", createOpts.output, "json, yaml or name");
  // expose
  ExposeOptions exposeOpts;
  auto* expose = app.add_subcommand(
      "expose", "Expose a deployment, replica set, pod or service as a new Service");
  expose->add_option("args", exposeOpts.args, "TYPE NAME or TYPE/NAME")->required();
  expose->add_option("--port", exposeOpts.port, "The port the Service serves on");
  expose->add_option("--target-port", exposeOpts.targetPort,
                     "Name or number of the container port traffic is sent to");
  expose->add_option("--type", exposeOpts.type, "ClusterIP (default), NodePort or LoadBalancer");
  expose->add_option("--name", exposeOpts.name, "The Service's name (default: the object's)");
  expose->add_option("--protocol", exposeOpts.protocol, "TCP (default), UDP or SCTP");
  expose->add_option("-l,--selector", exposeOpts.selector,
                     "KEY=VALUE,... selecting the pods (default: the object's)");
  expose->add_option("--cluster-ip", exposeOpts.clusterIp,
                     "The cluster IP to ask for; None for a headless Service");
  expose->add_option("--dry-run", exposeOpts.dryRun, "none, client (print only) or server");
  expose->add_option("-o,--output", exposeOpts.output, "json, yaml or name");
  SetImageOptions setImageOpts;
  std::vector<std::string> setArgs;
  auto* set = app.add_subcommand("set", "Set fields of objects (set image)");
  set->add_option("args", setArgs, "image TYPE/NAME CONTAINER=IMAGE...")->required();

  // token
  TokenOptions tokenOpts;
  std::vector<std::string> tokenArgs;
  std::string tokenTtl;
  auto* token = app.add_subcommand("token", "Manage bootstrap tokens for joining edge nodes");
  token->add_option("args", tokenArgs, "create | list | delete ID")->required();
  token->add_option("--ttl", tokenTtl, "create: lifetime, e.g. 24h, 30m (0 = never expires)");
  token->add_option("--usages", tokenOpts.usages, "create: joins allowed (0 = unlimited)");
  token->add_option("--description", tokenOpts.description, "create: a note shown by list");
  token->add_flag("--no-headers", tokenOpts.noHeaders, "list: omit the header line");

  // model
  ModelOptions modelOpts;
  std::vector<std::string> modelArgs;
  auto* model = app.add_subcommand(
      "model", "Push, list and roll back versions of a model (sedna.io Model; docs/models.md)");
  model
      ->add_option("args", modelArgs,
                   "push NAME FILE --version V | history NAME | rollback NAME [--to-version V] | "
                   "promote NAME")
      ->required();
  model->add_option("--version", modelOpts.version, "push: the version name, e.g. v2");
  model->add_option("--format", modelOpts.format, "push: spec.format (default: FILE's extension)");
  model->add_option("--to-version", modelOpts.toVersion,
                    "rollback: this version (default: the previous one)");
  model->add_option("-o,--output", modelOpts.output, "history: json");
  model->add_option("--canary", modelOpts.canary,
                    "push: staged rollout to the first N nodes running pods that use the model");
  model->add_option("--canary-nodes", modelOpts.canaryNodes,
                    "push: staged rollout to these nodes (a,b,...)");
  model->add_option("--selector", modelOpts.selector,
                    "push: staged rollout to the nodes with these labels (k=v,...)");

  // upgrade
  UpgradeOptions upgradeOpts;
  auto* upgradeCmd = app.add_subcommand(
      "upgrade", "Push edgecore binaries for NodeUpgradeJobs (EdgecoreRelease; docs/upgrades.md)");
  upgradeCmd->add_option("args", upgradeOpts.args, "push FILE --version V [--arch ARCH]")
      ->required();
  upgradeCmd->add_option("--version", upgradeOpts.version,
                         "push: the release's version (NodeUpgradeJob spec.version)");
  upgradeCmd->add_option("--arch", upgradeOpts.arch,
                         "push: the nodes' architecture (default: FILE's ELF header)");

  // version
  VersionOptions versionOpts;
  // top
  TopOptions topOpts;
  auto* top = app.add_subcommand("top", "Display CPU and memory use of nodes or pods");
  top->add_option("args", topOpts.args, "node [NAME] | pod [NAME]")->required();
  top->add_option("-l,--selector", topOpts.selector, "Label selector (k=v,k2!=v2, ...)");
  top->add_option("--sort-by", topOpts.sortBy, "cpu or memory: highest first");
  top->add_flag("--containers", topOpts.containers, "Pods: one line per container");
  top->add_flag("--no-headers", topOpts.noHeaders, "Omit the header line");
  top->add_flag("--show-capacity", topOpts.showCapacity,
                "Nodes: percentages of capacity instead of allocatable");

  auto* version = app.add_subcommand("version", "Print the client and server versions");
  version->add_flag("--client", versionOpts.clientOnly, "Client version only");
  version->add_option("-o,--output", versionOpts.output, "Output format: json|yaml");

  for (auto* sub : app.get_subcommands({})) sub->fallthrough();

  // exec's command follows "--" and is kept away from CLI11 (its flags belong to the command).
  std::vector<std::string> execCommand;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) != "--") continue;
    bool isExec = false;
    for (int j = 1; j < i; ++j) isExec = isExec || std::string_view(argv[j]) == "exec";
    if (isExec) {
      execCommand.assign(argv + i + 1, argv + argc);
      argc = i;
    }
    break;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\nSee 'edgectl --help' for usage.\n";
    return 1;
  }

  ConfigInputs inputs;
  inputs.serverFlag = g.server;
  inputs.tokenFlag = g.token;
  inputs.configFlag = g.config;
  inputs.kubeconfigFlag = g.kubeconfig;
  inputs.contextFlag = g.context;
  inputs.caFlag = g.certificateAuthority;
  inputs.clientCertFlag = g.clientCertificate;
  inputs.clientKeyFlag = g.clientKey;
  inputs.insecureFlag = g.insecureSkipTlsVerify;
  inputs.envKubeconfig = envOr("KUBECONFIG");
  inputs.systemKubeconfig = std::string(kSystemKubeconfig);
  inputs.envServer = envOr("EDGECTL_SERVER");
  inputs.envToken = envOr("EDGECTL_TOKEN");
  inputs.envConfig = envOr("EDGECTL_CONFIG");
  inputs.home = envOr("HOME");
  auto config = resolveClientConfig(inputs);
  if (!config) {
    std::cerr << "error: " << config.status().message() << "\n";
    return 1;
  }
  http::ClientOptions clientOptions;
  clientOptions.timeout = std::chrono::seconds(30);
  if (!g.requestTimeout.empty()) {
    auto t = parseTimeout(g.requestTimeout);
    if (!t) {
      std::cerr << "error: " << t.status().message() << "\n";
      return 1;
    }
    clientOptions.timeout = *t;
  }
  // A remote command may run long: without --request-timeout, exec waits a little longer than
  // the hour the edge allows a command, so the edge's timeout is what the user sees.
  if (exec->parsed() && g.requestTimeout.empty()) clientOptions.timeout = std::chrono::minutes(65);
  clientOptions.bearerToken = config->token;
  clientOptions.caPem = config->caPem;
  clientOptions.clientCertPem = config->clientCertPem;
  clientOptions.clientKeyPem = config->clientKeyPem;
  clientOptions.tlsServerName = config->tlsServerName;
  clientOptions.insecureSkipVerify = config->insecureSkipVerify;
  clientOptions.userAgent = "edgectl/" + clientVersion();
  clientOptions.peerName = "cloudcore";
  HttpApiTransport transport(config->server, clientOptions, g.verbosity, std::cerr);

  Context ctx;
  ctx.api = &transport;
  ctx.out = &std::cout;
  ctx.err = &std::cerr;
  ctx.in = &std::cin;
  ctx.nsExplicit = !g.ns.empty();
  ctx.ns = !g.ns.empty()                       ? g.ns
           : !config->defaultNamespace.empty() ? config->defaultNamespace
                                               : "default";
  ctx.allNamespaces = g.allNamespaces;
  ctx.clock = &SystemClock::instance();
  ctx.verbosity = g.verbosity;

  if (apply->parsed()) return runApply(ctx, applyOpts);
  if (create->parsed()) {
    if (createArgs.front() != "secret") {
      std::cerr
          << "error: unknown create command \"" << createArgs.front()
          << "\" (edgectl create secret docker-registry NAME; other objects: edgectl apply)\n";
      return 1;
    }
    createOpts.args.assign(createArgs.begin() + 1, createArgs.end());
    return runCreateSecret(ctx, createOpts);
  }
  if (expose->parsed()) return runExpose(ctx, exposeOpts);
  if (set->parsed()) {
    if (setArgs.front() != "image") {
      std::cerr << "error: unknown set command \"" << setArgs.front() << "\" (set image)\n";
      return 1;
    }
    setImageOpts.args.assign(setArgs.begin() + 1, setArgs.end());
    return runSetImage(ctx, setImageOpts);
  }
  if (upgradeCmd->parsed()) return runUpgradePush(ctx, upgradeOpts);
  if (model->parsed()) {
    const std::string action = modelArgs.front();
    modelOpts.args.assign(modelArgs.begin() + 1, modelArgs.end());
    if (action == "push") return runModelPush(ctx, modelOpts);
    if (action == "history") return runModelHistory(ctx, modelOpts);
    if (action == "rollback") return runModelRollback(ctx, modelOpts);
    if (action == "promote") return runModelPromote(ctx, modelOpts);
    std::cerr << "error: unknown model command \"" << action
              << "\" (push, history, rollback or promote)\n";
    return 1;
  }
  if (token->parsed()) {
    tokenOpts.action = tokenArgs.front();
    tokenOpts.args.assign(tokenArgs.begin() + 1, tokenArgs.end());
    if (!tokenTtl.empty()) {
      auto t = parseTimeout(tokenTtl);
      if (!t) {
        std::cerr << "error: --ttl: " << t.status().message() << "\n";
        return 1;
      }
      tokenOpts.ttl = *t;
    }
    tokenOpts.kubeconfigCaPem = config->caPem;
    return runToken(ctx, tokenOpts);
  }
  if (get->parsed()) {
    if (getOpts.watch || getOpts.watchOnly) std::signal(SIGINT, onInterrupt);
    return runGet(ctx, getOpts);
  }
  if (describe->parsed()) return runDescribe(ctx, describeOpts);
  if (portForward->parsed()) {
    std::signal(SIGINT, onInterrupt);
    std::signal(SIGTERM, onInterrupt);
    return runPortForward(ctx, pfOpts);
  }
  if (data->parsed()) return runData(ctx, dataOpts);
  if (logs->parsed()) {
    if (logsOpts.follow) std::signal(SIGINT, onInterrupt);
    return runLogs(ctx, logsOpts);
  }
  if (exec->parsed()) {
    execOpts.args.insert(execOpts.args.end(), execCommand.begin(), execCommand.end());
    return runExec(ctx, execOpts);
  }
  if (del->parsed()) {
    if (deleteNow) deleteOpts.gracePeriod = 1;
    if (!deleteTimeout.empty()) {
      auto t = parseTimeout(deleteTimeout);
      if (!t) {
        std::cerr << "error: " << t.status().message() << "\n";
        return 1;
      }
      if (t->count() > 0) deleteOpts.waitTimeout = *t;
    }
    return runDelete(ctx, deleteOpts);
  }
  if (ar->parsed()) {
    arOpts.apiGroupSet = apiGroupOpt->count() > 0;
    return runApiResources(ctx, arOpts);
  }
  if (rollout->parsed()) {
    rolloutOpts.action = rolloutArgs.front();
    rolloutOpts.args.assign(rolloutArgs.begin() + 1, rolloutArgs.end());
    if (!rolloutTimeout.empty()) {
      auto t = parseTimeout(rolloutTimeout);
      if (!t) {
        std::cerr << "error: " << t.status().message() << "\n";
        return 1;
      }
      rolloutOpts.timeout = *t;
    }
    return runRollout(ctx, rolloutOpts);
  }
  if (scale->parsed()) return runScale(ctx, scaleOpts);
  if (top->parsed()) return runTop(ctx, topOpts);
  if (version->parsed()) return runVersion(ctx, versionOpts);
  std::cerr << "error: unknown command\n";
  return 1;
}

}  // namespace
}  // namespace ep::edgectl

int main(int argc, char** argv) {
  try {
    int rc = ep::edgectl::run(argc, argv);
    std::cout.flush();
    return rc;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
