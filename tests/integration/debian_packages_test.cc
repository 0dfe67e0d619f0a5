// scripts/build-debs.sh: the packages pass lintian, are reproducible, hold what docs/install.md
// says, and install, run, upgrade and purge cleanly in a Debian 12 container (podman with a
// debootstrapped root file system, tests/integration/deb_lifecycle.sh inside).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace ep::testing {
namespace {

namespace fs = std::filesystem;

const std::string kSource = EP_SOURCE_DIR;
const std::string kVersion1 = "0.1.0~test1";
const std::string kVersion2 = "0.1.0~test2";

std::string arch() {
  auto r = runCommand({"dpkg", "--print-architecture"});
  return r.out.substr(0, r.out.find('\n'));
}

class DebianPackagesTest : public ::testing::Test {
 protected:
  // Builds the three packages of `version` into dir_/out (no lintian unless asked).
  CommandResult buildDebs(const std::string& version, const std::string& out, bool lintian) {
    std::vector<std::string> argv = {"/bin/bash",   kSource + "/scripts/build-debs.sh",
                                     "--no-build",  "--build-dir",
                                     buildPath(""), "--out",
                                     out,           "--version",
                                     version};
    if (!lintian) argv.push_back("--no-lintian");
    return runCommand(argv, "", std::chrono::minutes(5));
  }
  std::string deb(const std::string& dir, const std::string& pkg, const std::string& version) {
    return dir + "/" + pkg + "_" + version + "_" + arch() + ".deb";
  }
  TempDir dir_;
};

TEST_F(DebianPackagesTest, LintianFindsNoErrorsAndBuildsAreReproducible) {
  auto a = buildDebs(kVersion1, dir_.path() + "/a", /*lintian=*/true);
  ASSERT_EQ(a.exitCode, 0) << a.out << a.err;
  auto b = buildDebs(kVersion1, dir_.path() + "/b", /*lintian=*/false);
  ASSERT_EQ(b.exitCode, 0) << b.out << b.err;
  for (const char* pkg : {"cloudcore", "edgecore", "edgectl"}) {
    const std::string da = deb(dir_.path() + "/a", pkg, kVersion1);
    const std::string db = deb(dir_.path() + "/b", pkg, kVersion1);
    ASSERT_TRUE(fs::exists(da)) << a.out;
    auto sa = runCommand({"sha256sum", da});
    auto sb = runCommand({"sha256sum", db});
    EXPECT_EQ(sa.out.substr(0, 64), sb.out.substr(0, 64)) << pkg << " is not reproducible";
  }

  // What each package holds.
  auto contents = [&](const std::string& pkg) {
    return runCommand({"dpkg-deb", "--contents", deb(dir_.path() + "/a", pkg, kVersion1)}).out;
  };
  const std::string cloud = contents("cloudcore");
  EXPECT_NE(cloud.find("./usr/bin/cloudcore"), std::string::npos) << cloud;
  EXPECT_NE(cloud.find("./lib/systemd/system/cloudcore.service"), std::string::npos) << cloud;
  EXPECT_NE(cloud.find("./etc/edgeplane/cloudcore.yaml"), std::string::npos) << cloud;
  EXPECT_EQ(cloud.find("/usr/local"), std::string::npos) << cloud;
  const std::string edge = contents("edgecore");
  EXPECT_NE(edge.find("./usr/bin/edgecore"), std::string::npos) << edge;
  EXPECT_NE(edge.find("./lib/systemd/system/edgecore.service"), std::string::npos) << edge;
  EXPECT_NE(contents("edgectl").find("./usr/bin/edgectl"), std::string::npos);
  // Maintainer scripts: an upgrade restarts a running edgecore and never stops it first (its
  // pods keep running); removing stops it; cloudcore gets its user.
  auto control = [&](const std::string& pkg, const std::string& script) {
    const std::string out = dir_.path() + "/control-" + pkg;
    runCommand({"dpkg-deb", "-e", deb(dir_.path() + "/a", pkg, kVersion1), out});
    std::ifstream f(out + "/" + script);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  EXPECT_NE(control("edgecore", "postinst").find("try-restart"), std::string::npos);
  EXPECT_EQ(control("edgecore", "preinst").find("stop"), std::string::npos);
  EXPECT_NE(control("edgecore", "prerm").find("deb-systemd-invoke stop edgecore.service"),
            std::string::npos);
  EXPECT_NE(control("cloudcore", "postinst").find("adduser --system"), std::string::npos);
  EXPECT_NE(control("cloudcore", "prerm").find("deb-systemd-invoke stop"), std::string::npos);
  EXPECT_NE(control("cloudcore", "conffiles").find("/etc/edgeplane/cloudcore.yaml"),
            std::string::npos);

  auto depends = runCommand(
      {"dpkg-deb", "--field", deb(dir_.path() + "/a", "cloudcore", kVersion1), "Depends"});
  EXPECT_NE(depends.out.find("adduser"), std::string::npos) << depends.out;
  EXPECT_NE(depends.out.find("libc6"), std::string::npos) << depends.out;
}

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \n"));
  s.erase(s.find_last_not_of(" \n") + 1);
  return s;
}

bool installedHere(const std::string& pkg) {
  auto r = runCommand({"dpkg-query", "-W", "-f", "${Status}", pkg});
  return r.exitCode == 0 && r.out.find("install ok installed") != std::string::npos;
}

// The installed package that provides virtual package `name` (e.g. libspdlog1.10 provides
// libspdlog1.10-fmt9, which debootstrap cannot resolve), or "".
std::string providerHere(const std::string& name) {
  auto r = runCommand({"dpkg-query", "-W", "-f", "${Package}\t${Provides}\n"});
  std::stringstream ss(r.out);
  std::string line;
  while (std::getline(ss, line)) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::stringstream provides(line.substr(tab + 1));
    std::string p;
    while (std::getline(provides, p, ',')) {
      if (trim(p.substr(0, p.find('('))) == name) return line.substr(0, tab);
    }
  }
  return "";
}

// The packages' run-time dependencies, for the container's root file system: of alternatives
// ("a | b"), the one this machine has (it built the binaries), else the first; virtual packages
// as the package here that provides them.
std::set<std::string> dependencies(const std::vector<std::string>& debs) {
  std::set<std::string> out;
  for (const auto& d : debs) {
    auto r = runCommand({"dpkg-deb", "--field", d, "Depends"});
    std::stringstream ss(r.out);
    std::string item;
    while (std::getline(ss, item, ',')) {
      std::stringstream alts(item);
      std::string alt, chosen;
      while (std::getline(alts, alt, '|')) {
        alt = trim(alt.substr(0, alt.find('(')));
        if (alt.empty()) continue;
        if (chosen.empty()) chosen = alt;
        if (installedHere(alt)) {
          chosen = alt;
          break;
        }
      }
      if (!chosen.empty() && !installedHere(chosen)) {
        if (std::string provider = providerHere(chosen); !provider.empty()) chosen = provider;
      }
      if (!chosen.empty()) out.insert(chosen);
    }
  }
  return out;
}

TEST_F(DebianPackagesTest, InstallRunUpgradeAndPurgeInAContainer) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (podman and debootstrap)";
  for (const char* tool : {"/usr/bin/podman", "/usr/sbin/debootstrap"}) {
    if (!fs::exists(tool)) GTEST_SKIP() << tool << " is missing (scripts/install-deps.sh)";
  }
  const std::string v1 = dir_.path() + "/debs/v1", v2 = dir_.path() + "/debs/v2";
  auto r1 = buildDebs(kVersion1, v1, false);
  ASSERT_EQ(r1.exitCode, 0) << r1.out << r1.err;
  auto r2 = buildDebs(kVersion2, v2, false);
  ASSERT_EQ(r2.exitCode, 0) << r2.out << r2.err;

  // A Debian 12 root file system with the packages' dependencies (but not the packages),
  // debootstrapped once per dependency set and kept under /var/cache (the container works on
  // an overlay of it and leaves it untouched).
  std::vector<std::string> debs;
  for (const char* pkg : {"cloudcore", "edgecore", "edgectl"})
    debs.push_back(deb(v1, pkg, kVersion1));
  std::string include;
  for (const auto& d : dependencies(debs)) {
    if (d.rfind("${", 0) == 0) continue;
    include += (include.empty() ? "" : ",") + d;
  }
  auto rootfs = runCommand({"/bin/bash", kSource + "/scripts/debian-rootfs.sh", include}, "",
                           std::chrono::minutes(15));
  ASSERT_EQ(rootfs.exitCode, 0) << rootfs.out << rootfs.err;
  const std::string root = rootfs.out.substr(0, rootfs.out.find('\n'));

  // --rootfs makes the first argument a root file system (":O": an overlay on it).
  auto run = runCommand(
      {"podman", "run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit",
       "nproc=1024:1024", "-e", "V2=" + kVersion2, "-v", dir_.path() + "/debs:/debs:ro", "-v",
       kSource + "/tests/integration/deb_lifecycle.sh:/deb_lifecycle.sh:ro", "--rootfs",
       root + ":O", "/bin/bash", "/deb_lifecycle.sh"},
      "", std::chrono::minutes(5));
  EXPECT_EQ(run.exitCode, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("deb lifecycle: ok"), std::string::npos) << run.out << run.err;
}

}  // namespace
}  // namespace ep::testing
