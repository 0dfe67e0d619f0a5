#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace ep::testing {

// A program run on a pseudo-terminal, as a user at a terminal runs it (kubectl exec -it needs
// one). The terminal starts at `rows` x `cols`; what the program writes to it is collected.
// Test code only; not thread-safe.
class TerminalProcess {
 public:
  TerminalProcess(const std::vector<std::string>& argv, unsigned short rows, unsigned short cols,
                  const std::vector<std::string>& extraEnv = {});
  ~TerminalProcess();  // kills and reaps the program if it still runs
  TerminalProcess(const TerminalProcess&) = delete;
  TerminalProcess& operator=(const TerminalProcess&) = delete;

  bool started() const { return pid_ > 0; }
  // Writes `keys` as typed at the terminal.
  void type(const std::string& keys);
  // Waits until the output holds `text` (false after `timeout`).
  bool waitFor(const std::string& text, std::chrono::milliseconds timeout);
  const std::string& output() const { return output_; }
  // Changes the terminal's size (the program gets SIGWINCH).
  void resize(unsigned short rows, unsigned short cols);
  // Waits for the program to exit: its exit code, or -1 after `timeout` (it is then killed).
  int wait(std::chrono::milliseconds timeout);

 private:
  // Reads what is available within `timeout`; false when the terminal closed.
  bool pump(std::chrono::milliseconds timeout);

  int master_ = -1;
  pid_t pid_ = -1;
  int exitCode_ = -1;
  bool reaped_ = false;
  std::string output_;
};

}  // namespace ep::testing
