// deploy/install/install-edgecore.sh end to end: it installs edgecore under a temporary --root
// and joins a real cloudcore with a token; the installed binary, run with the installed
// configuration, brings the Node Ready. Re-running changes nothing and does not join again; a
// refused join leaves nothing behind; --uninstall removes exactly what was installed.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/integration/edge_fixture.h"

namespace ep::testing {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

unsigned mode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

// Every path under root, relative, directories with a trailing '/'.
std::set<std::string> tree(const std::string& root) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    std::string rel = fs::relative(e.path(), root).string();
    out.insert(e.is_directory() ? rel + "/" : rel);
  }
  return out;
}

class InstallEdgecoreTest : public EdgeFixture {
 protected:
  void SetUp() override {
    EdgeFixture::SetUp();
    root_ = dir_.path() + "/root";
    fs::create_directories(root_ + "/etc");  // something that was there before
  }

  CommandResult install(std::vector<std::string> extra) {
    std::vector<std::string> argv = {
        "/bin/bash",
        std::string(EP_SOURCE_DIR) + "/deploy/install/install-edgecore.sh",
        "--root",
        root_,
        "--binary",
        buildPath("edgecore/edgecore"),
        "--cloud",
        "127.0.0.1:" + std::to_string(tunnelPort_),
        "--runtime-endpoint",
        "",
        "--mqtt-server",
        ""};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return runCommand(argv);
  }

  bool nodeExists(const std::string& name) {
    auto c = client();
    auto r = c.request("GET", "/api/v1/nodes/" + name);
    return r.isOk() && r->status == 200;
  }

  std::string root_;
};

TEST_F(InstallEdgecoreTest, InstallsJoinsAndTheInstalledServiceGoesReady) {
  // A single-use token: a second run must not need it again.
  auto t = edgectl({"token", "create", "--usages", "1"});
  ASSERT_EQ(t.exitCode, 0) << t.err;
  const std::string token = t.out.substr(0, t.out.find('\n'));
  const int apiPort = freePort();

  auto r = install({"--token", token, "--node-name", "gw-1", "--labels", "site=hall-3,tier=edge",
                    "--local-api-listen", "127.0.0.1:" + std::to_string(apiPort)});
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  // Joined during the install: the Node exists before edgecore runs as a service.
  EXPECT_TRUE(nodeExists("gw-1"));

  const std::string bin = root_ + "/usr/local/bin/edgecore";
  const std::string config = root_ + "/etc/edgeplane/edgecore.yaml";
  const std::string unit = root_ + "/etc/systemd/system/edgecore.service";
  const std::string data = root_ + "/var/lib/edgeplane/edgecore";
  EXPECT_EQ(mode(bin), 0755u);
  EXPECT_EQ(mode(config), 0644u);
  EXPECT_EQ(mode(unit), 0644u);
  EXPECT_EQ(mode(data), 0700u);
  EXPECT_EQ(mode(data + "/pki/node.pem"), 0600u);
  EXPECT_EQ(slurp(bin), slurp(buildPath("edgecore/edgecore")));
  // The unit runs the installed binary with the installed configuration.
  EXPECT_NE(slurp(unit).find("ExecStart=" + bin + " --config " + config), std::string::npos)
      << slurp(unit);
  // The token is not kept anywhere under the root.
  for (const auto& e : fs::recursive_directory_iterator(root_)) {
    if (e.is_regular_file() && e.path().string().find("/edgecore/") == std::string::npos) {
      EXPECT_EQ(slurp(e.path().string()).find(token), std::string::npos) << e.path();
    }
  }

  // The installed service, as systemd would start it, brings the node Ready with its labels.
  Process edge({bin, "--config", config}, dir_.path() + "/installed-edgecore.log");
  ASSERT_TRUE(edge.start());
  ASSERT_TRUE(waitReady(apiPort)) << edge.log();
  ASSERT_TRUE(eventually([&] { return nodeReady("gw-1") == "True"; })) << edge.log();
  auto node = nlohmann::json::parse(edgectl({"get", "node", "gw-1", "-o", "json"}).out);
  EXPECT_EQ(node["metadata"]["labels"].value("site", ""), "hall-3");
  EXPECT_EQ(node["metadata"]["labels"].value("tier", ""), "edge");
  ASSERT_EQ(edge.stop(SIGTERM), 0) << edge.log();

  // Idempotent: the same command again (its one-use token is spent) changes nothing.
  const auto before = tree(root_);
  const auto configBefore = fs::last_write_time(config);
  auto again =
      install({"--token", token, "--node-name", "gw-1", "--labels", "site=hall-3,tier=edge",
               "--local-api-listen", "127.0.0.1:" + std::to_string(apiPort)});
  ASSERT_EQ(again.exitCode, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("already has credentials"), std::string::npos) << again.out;
  EXPECT_EQ(again.out.find("wrote "), std::string::npos) << again.out;
  EXPECT_EQ(tree(root_), before);
  EXPECT_EQ(fs::last_write_time(config), configBefore);

  // A changed setting rewrites only the configuration.
  auto changed = install({"--node-name", "gw-1", "--labels", "site=hall-4", "--local-api-listen",
                          "127.0.0.1:" + std::to_string(apiPort)});
  ASSERT_EQ(changed.exitCode, 0) << changed.out << changed.err;
  EXPECT_NE(changed.out.find("wrote " + config), std::string::npos) << changed.out;
  EXPECT_EQ(changed.out.find("wrote " + bin), std::string::npos) << changed.out;
  EXPECT_NE(slurp(config).find("\"site\": \"hall-4\""), std::string::npos) << slurp(config);

  // --uninstall leaves the root as it was before the first install.
  auto un =
      runCommand({"/bin/bash", std::string(EP_SOURCE_DIR) + "/deploy/install/install-edgecore.sh",
                  "--uninstall", "--root", root_});
  ASSERT_EQ(un.exitCode, 0) << un.out << un.err;
  EXPECT_EQ(tree(root_), (std::set<std::string>{"etc/"}));
}

TEST_F(InstallEdgecoreTest, ARefusedJoinLeavesNothingBehind) {
  auto t = edgectl({"token", "create"});
  ASSERT_EQ(t.exitCode, 0) << t.err;
  std::string token = t.out.substr(0, t.out.find('\n'));
  // The right token with another CA's hash: refused before the token is sent.
  token = token.substr(0, token.rfind('.') + 1) + std::string(64, '0');
  auto r = install({"--token", token, "--node-name", "gw-2"});
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("joining 127.0.0.1:" + std::to_string(tunnelPort_) + " as gw-2 failed"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(tree(root_), (std::set<std::string>{"etc/"}));
  EXPECT_FALSE(nodeExists("gw-2"));
}

TEST_F(InstallEdgecoreTest, KeepsWhatItDidNotWriteUnlessForcedAndPutsItBack) {
  fs::create_directories(root_ + "/etc/edgeplane");
  const std::string config = root_ + "/etc/edgeplane/edgecore.yaml";
  std::ofstream(config) << "nodeName: mine\n";
  auto r = install({"--token", joinToken(), "--node-name", "gw-3"});
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("was not written by this script"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(config), "nodeName: mine\n");

  auto forced = install({"--token", joinToken(), "--node-name", "gw-3", "--force"});
  ASSERT_EQ(forced.exitCode, 0) << forced.out << forced.err;
  EXPECT_TRUE(nodeExists("gw-3"));
  EXPECT_NE(slurp(config).find("nodeName: \"gw-3\""), std::string::npos);
  // From then on the file is the script's: the same command needs no --force.
  auto again = install({"--node-name", "gw-3"});
  ASSERT_EQ(again.exitCode, 0) << again.out << again.err;

  // A joined node keeps its name: another one needs an uninstall first.
  auto renamed = install({"--token", joinToken(), "--node-name", "gw-4"});
  EXPECT_EQ(renamed.exitCode, 1) << renamed.out << renamed.err;
  EXPECT_NE(renamed.err.find("joined as gw-3"), std::string::npos) << renamed.err;
  EXPECT_NE(slurp(config).find("nodeName: \"gw-3\""), std::string::npos);

  // Uninstalling puts the operator's file back, and removes the rest.
  auto un =
      runCommand({"/bin/bash", std::string(EP_SOURCE_DIR) + "/deploy/install/install-edgecore.sh",
                  "--uninstall", "--root", root_});
  ASSERT_EQ(un.exitCode, 0) << un.out << un.err;
  EXPECT_EQ(slurp(config), "nodeName: mine\n");
  EXPECT_EQ(tree(root_),
            (std::set<std::string>{"etc/", "etc/edgeplane/", "etc/edgeplane/edgecore.yaml"}));
}

TEST_F(InstallEdgecoreTest, AFailedRerunPutsBackWhatItChanged) {
  auto first = install({"--token", joinToken(), "--node-name", "gw-5"});
  ASSERT_EQ(first.exitCode, 0) << first.out << first.err;
  const std::string config = root_ + "/etc/edgeplane/edgecore.yaml";
  const std::string before = slurp(config);
  const auto treeBefore = tree(root_);
  // The join cannot fail for a node that has credentials: take them away, so that this run
  // must join, with a token the cloud refuses, after rewriting the configuration.
  fs::rename(root_ + "/var/lib/edgeplane/edgecore/pki", dir_.path() + "/pki-aside");
  auto r = install({"--token", "abcdef.0123456789abcdef." + std::string(64, '0'), "--node-name",
                    "gw-5", "--labels", "changed=yes"});
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("wrote " + config), std::string::npos) << r.out;
  EXPECT_EQ(slurp(config), before);
  fs::rename(dir_.path() + "/pki-aside", root_ + "/var/lib/edgeplane/edgecore/pki");
  EXPECT_EQ(tree(root_), treeBefore);
}

TEST_F(InstallEdgecoreTest, InvalidFlagsAreUsageErrors) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"--node-name", "Not_A_Name"},
                                             {"--node-name", "ok", "--cloud", ","},
                                             {"--node-name", "ok", "--labels", "novalue"},
                                             {"--node-name", "ok", "--root", "/tmp/a|b"}}) {
    auto bad = install(args);
    EXPECT_EQ(bad.exitCode, 2) << args[1] << ": " << bad.err;
    EXPECT_NE(bad.err.find(args[args.size() - 2]), std::string::npos) << bad.err;
  }
  EXPECT_EQ(tree(root_), (std::set<std::string>{"etc/"}));
}

}  // namespace
}  // namespace ep::testing
