#include "launcher/coordinator_load_children.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/coordinator_client.h"
#include "core/error.h"

extern char** environ;

namespace kervan {

namespace {

using Clock = std::chrono::steady_clock;

// This binary run as a child, with a pipe to its stdin and one from its stdout.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0)
      throw EnvironmentError("pipe", "bench coordinator", std::strerror(errno));
    if (::pipe2(out, O_CLOEXEC) != 0) {
      ::close(in[0]), ::close(in[1]);
      throw EnvironmentError("pipe", "bench coordinator", std::strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    std::vector<char*> argv, envp;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    const int err = ::posix_spawn(&pid_, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    if (err != 0) {
      ::close(in[1]), ::close(out[0]);
      throw EnvironmentError("posix_spawn", "/proc/self/exe", std::strerror(err));
    }
    to_ = in[1];
    from_ = ::fdopen(out[0], "r");
  }
  ~Child() {
    if (to_ >= 0) ::close(to_);  // a child still waiting for its start sees the end and exits
    if (from_) std::fclose(from_);
    if (pid_ > 0) wait();
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Its next line of output; an EnvironmentError when it ended first (its stderr says why).
  std::string read_line() {
    char* line = nullptr;
    size_t capacity = 0;
    const ssize_t n = ::getline(&line, &capacity, from_);
    std::string text = n > 0 ? std::string(line, static_cast<size_t>(n)) : "";
    std::free(line);
    if (text.empty() || text.back() != '\n')
      throw EnvironmentError(
          fmt::format("bench coordinator: a simulated-workers process (pid {}) ended early", pid_));
    text.pop_back();
    return text;
  }
  void write_line(const std::string& text) {
    const std::string line = text + "\n";
    if (::write(to_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      throw EnvironmentError("write", "a simulated-workers process", std::strerror(errno));
  }
  // Its exit status (0: it finished its load).
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = 0;
  int to_ = -1;
  FILE* from_ = nullptr;
};

// `kervan bench coordinator` options that make a child run `opt` for workers [first, first + n).
std::vector<std::string> child_args(const LoadOptions& opt, int first, int n) {
  std::vector<std::string> args = {"kervan", "bench", "coordinator", "--only", "rpc"};
  const auto option = [&](const char* name, const std::string& value) {
    args.emplace_back(name);
    args.push_back(value);
  };
  option("--coordinator", opt.address);
  option("--workers", std::to_string(n));
  option("--seconds", fmt::format("{}", opt.seconds));
  option("--warmup-s", fmt::format("{}", opt.warmup_s));
  option("--paces", opt.closed_loop ? "0" : fmt::format("{}", opt.step_ms));
  option("--heartbeat-ms", fmt::format("{}", opt.heartbeat_ms));
  option("--client-processes", "1");
  option("--client-threads", std::to_string(opt.threads));
  option("--load-child", std::to_string(first));
  option("--load-world", std::to_string(opt.workers));
  if (!opt.fetch) args.push_back("--no-fetch");
  option("--client", opt.client == LoadClient::kGrpc ? "grpc" : "h2");
  return args;
}

// This process's environment with KERVAN_TOKEN set to the coordinator's token.
std::vector<std::string> child_env(const SharedSecret& secret) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "KERVAN_TOKEN=", 13) != 0) env.emplace_back(*e);
  env.push_back("KERVAN_TOKEN=" + secret.token());
  return env;
}

LoadSamples samples_from_json(const std::string& line) {
  const nlohmann::json j = nlohmann::json::parse(line);
  LoadSamples s;
  s.heartbeat_ms = j.at("heartbeat_ms").get<std::vector<double>>();
  s.fetch_ms = j.at("fetch_ms").get<std::vector<double>>();
  s.warmup_ms = j.at("warmup_ms").get<std::vector<double>>();
  s.in_window = j.at("in_window").get<int64_t>();
  s.errors = j.at("errors").get<int64_t>();
  s.error_codes = j.at("error_codes").get<std::map<std::string, int64_t>>();
  s.process_cpu_s = j.at("process_cpu_s").get<double>();
  return s;
}

}  // namespace

LoadResult run_coordinator_load_in_children(const LoadOptions& opt, int processes,
                                            const SharedSecret& secret) {
  if (processes < 1) throw UserError("bench coordinator: --client-processes must be at least 1");
  // A child that died before reading its start must not take this process with it (SIGPIPE).
  std::signal(SIGPIPE, SIG_IGN);
  const std::vector<std::string> env = child_env(secret);
  std::vector<std::unique_ptr<Child>> children;
  for (int p = 0, first = 0; p < processes && first < opt.workers; ++p) {
    const int n = opt.workers / processes + (p < opt.workers % processes ? 1 : 0);
    children.push_back(std::make_unique<Child>(child_args(opt, first, n), env));
    first += n;
  }
  for (auto& c : children)
    if (const std::string line = c->read_line(); line != "ready")
      throw EnvironmentError("bench coordinator: a simulated-workers process said '" + line + "', not ready");
  const Clock::time_point start = Clock::now() + std::chrono::milliseconds(20);  // every child hears it
  for (auto& c : children) c->write_line(fmt::format("start {}", start.time_since_epoch().count()));
  std::vector<LoadSamples> parts;
  for (auto& c : children) parts.push_back(samples_from_json(c->read_line()));
  for (auto& c : children)
    if (const int status = c->wait(); status != 0)
      throw EnvironmentError(
          fmt::format("bench coordinator: a simulated-workers process exited with {}", status));
  return summarize_load(parts, opt);
}

void run_coordinator_load_child(LoadOptions opt, const SharedSecret& secret) {
  const coordinator::v1::ManifestResponse manifest =
      CoordinatorClient({opt.address, "default", 10}, secret).manifest();
  opt.start = [] {
    std::printf("ready\n");
    std::fflush(stdout);
    std::string line;
    if (!std::getline(std::cin, line) || line.rfind("start ", 0) != 0)
      throw UserError("bench coordinator --load-child: no start time on stdin");
    return Clock::time_point(Clock::duration(std::stoll(line.substr(6))));
  };
  const LoadSamples s = run_coordinator_load(opt, secret, manifest);
  const nlohmann::json j = {
      {"heartbeat_ms", s.heartbeat_ms},  {"fetch_ms", s.fetch_ms}, {"warmup_ms", s.warmup_ms},
      {"in_window", s.in_window},        {"errors", s.errors},     {"error_codes", s.error_codes},
      {"process_cpu_s", s.process_cpu_s}};
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

}  // namespace kervan
