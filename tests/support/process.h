// Child processes for tests: spawn with arguments and extra environment, output to a file,
// signal, and wait with a deadline. The destructor kills a child that is still running.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace infergate::test {

class Child {
 public:
  Child() = default;
  // Starts argv[0] with argv; stdout and stderr go to output_path (appended).
  static Child spawn(const std::vector<std::string>& argv,
                     const std::map<std::string, std::string>& extra_env,
                     const std::string& output_path);
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  ~Child();

  int pid() const { return pid_; }
  void signal(int sig) const;
  // The exit code (or 128 + signal), or nullopt if still running at the deadline.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  int pid_ = -1;
  std::optional<int> status_;
};

// Runs a shell command; returns its stdout, sets *rc to the exit code.
std::string run_command(const std::string& cmd, int* rc = nullptr);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);
// A fresh empty directory under the build's temp area.
std::string make_temp_dir(const std::string& prefix);

}  // namespace infergate::test
