// The test helpers' port allocator: parallel test processes must never be handed the same port
// (two tests once shared one mosquitto that way).
#include "tests/testing/process.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <string>

#include "tests/testing/temp_dir.h"

namespace ep::testing {
namespace {

TEST(FreePortTest, ParallelProcessesAreNeverHandedTheSamePort) {
  if (!portsAreShared()) GTEST_SKIP() << "no shared port counter on this machine";
  TempDir dir;
  constexpr int kProcesses = 3;
  constexpr int kPortsEach = 300;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::ofstream out(dir.path() + "/ports-" + std::to_string(p));
      for (int i = 0; i < kPortsEach; ++i) out << freePort() << "\n";
      out.close();
      _exit(out ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::set<int> seen;
  for (int p = 0; p < kProcesses; ++p) {
    std::ifstream in(dir.path() + "/ports-" + std::to_string(p));
    int port = 0;
    int count = 0;
    while (in >> port) {
      EXPECT_GT(port, 0);
      EXPECT_TRUE(seen.insert(port).second) << "port " << port << " handed out twice";
      ++count;
    }
    EXPECT_EQ(count, kPortsEach);
  }
}

TEST(FreePortTest, APortHandedOutIsFree) {
  int port = freePort();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << port;
  close(fd);
}

}  // namespace
}  // namespace ep::testing
