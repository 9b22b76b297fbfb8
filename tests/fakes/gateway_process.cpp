#include "fakes/gateway_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "fakes/support.h"

namespace rgtest {

namespace {

int64_t nowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

pid_t spawn(const std::string& binary, const std::vector<std::string>& args,
            const std::map<std::string, std::string>& env, const std::string& workDir,
            const std::string& outPath, const std::string& errPath) {
  pid_t pid = fork();
  if (pid != 0) {
    return pid;
  }
  // Child.
  int out = ::open(outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int err = ::open(errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int devnull = ::open("/dev/null", O_RDONLY);
  if (out < 0 || err < 0 || devnull < 0) {
    _exit(127);
  }
  dup2(devnull, 0);
  dup2(out, 1);
  dup2(err, 2);
  if (!workDir.empty() && chdir(workDir.c_str()) != 0) {
    _exit(127);
  }
  for (const auto& kv : env) {
    setenv(kv.first.c_str(), kv.second.c_str(), 1);
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execv(binary.c_str(), argv.data());
  _exit(127);
}

int decodeStatus(int st) {
  if (WIFEXITED(st)) {
    return WEXITSTATUS(st);
  }
  if (WIFSIGNALED(st)) {
    return 128 + WTERMSIG(st);
  }
  return -1;
}

}  // namespace

bool waitFor(const std::function<bool()>& pred, int timeoutMs) {
  int64_t deadline = nowMs() + timeoutMs;
  int delay = 1;
  while (!pred()) {
    if (nowMs() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    delay = std::min(delay * 2, 20);
  }
  return true;
}

std::string CommandResult::lastLine() const {
  std::istringstream in(out);
  std::string line;
  std::string last;
  while (std::getline(in, line)) {
    if (!line.empty()) {
      last = line;
    }
  }
  return last;
}

CommandResult runCommand(const std::string& binary, const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env, int timeoutMs) {
  TempDir tmp;
  CommandResult r;
  std::string outPath = tmp.file("out");
  std::string errPath = tmp.file("err");
  pid_t pid = spawn(binary, args, env, "", outPath, errPath);
  int st = 0;
  bool done = waitFor([&] { return waitpid(pid, &st, WNOHANG) == pid; }, timeoutMs);
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    r.exitCode = -1;
  } else {
    r.exitCode = decodeStatus(st);
  }
  r.out = readFile(outPath);
  r.err = readFile(errPath);
  return r;
}

std::unique_ptr<GatewayProcess> GatewayProcess::start(const std::string& binary,
                                                      const std::string& configPath,
                                                      const std::string& workDir,
                                                      const std::map<std::string, std::string>& env,
                                                      std::string* error, int timeoutMs) {
  std::unique_ptr<GatewayProcess> p(new GatewayProcess());
  // Fresh file names per launch: a relaunch must not read the previous process's listening line.
  static std::atomic<int> launches{0};
  std::string n = std::to_string(launches.fetch_add(1));
  p->outPath_ = workDir + "/gateway." + n + ".out";
  p->errPath_ = workDir + "/gateway." + n + ".err";
  p->pid_ =
      spawn(binary, {"serve", "--config", configPath}, env, workDir, p->outPath_, p->errPath_);
  static const std::regex re("listening on http://[^:]+:([0-9]+)");
  bool up = waitFor(
      [&] {
        std::smatch m;
        std::string out = readFile(p->outPath_);
        if (std::regex_search(out, m, re)) {
          p->port_ = std::stoi(m[1]);
          return true;
        }
        return !p->running();
      },
      timeoutMs);
  if (!up || p->port_ == 0) {
    *error = "gateway did not start; stderr:\n" + readFile(p->errPath_) + "\nstdout:\n" +
             readFile(p->outPath_);
    return nullptr;
  }
  return p;
}

GatewayProcess::~GatewayProcess() {
  if (running()) {
    kill9();
  }
}

std::string GatewayProcess::stdoutText() const {
  return readFile(outPath_);
}
std::string GatewayProcess::stderrText() const {
  return readFile(errPath_);
}

bool GatewayProcess::running() {
  if (pid_ <= 0 || exitStatus_ != -1) {
    return false;
  }
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    exitStatus_ = decodeStatus(st);
    return false;
  }
  return r == 0;
}

int GatewayProcess::stop(int sig, int timeoutMs) {
  if (!running()) {
    return exitStatus_;
  }
  kill(pid_, sig);
  if (!waitFor([&] { return !running(); }, timeoutMs)) {
    return -1;
  }
  return exitStatus_;
}

void GatewayProcess::kill9() {
  if (running()) {
    kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
    exitStatus_ = decodeStatus(st);
  }
}

std::string HttpResult::header(const std::string& name) const {
  for (const auto& h : headers) {
    if (strcasecmp(h.first.c_str(), name.c_str()) == 0) {
      return h.second;
    }
  }
  return {};
}

HttpResult httpRequest(int port, const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& body, int timeoutMs) {
  HttpResult r;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return r;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& h : headers) {
    req += h.first + ": " + h.second + "\r\n";
  }
  if (!body.empty() || method == "POST") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "Connection: close\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      r.error = "send failed";
      ::close(fd);
      return r;
    }
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  int64_t deadline = nowMs() + timeoutMs;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int64_t left = deadline - nowMs();
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) {
      r.error = "timeout";
      break;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      break;
    }
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t he = raw.find("\r\n\r\n");
  if (he == std::string::npos || raw.size() < 12) {
    if (r.error.empty()) {
      r.error = "no response head";
    }
    return r;
  }
  r.status = std::atoi(raw.c_str() + 9);
  std::istringstream hs(raw.substr(0, he));
  std::string line;
  std::getline(hs, line);
  while (std::getline(hs, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    size_t c = line.find(':');
    if (c != std::string::npos) {
      size_t v = line.find_first_not_of(' ', c + 1);
      r.headers.emplace_back(line.substr(0, c), v == std::string::npos ? "" : line.substr(v));
    }
  }
  std::string rest = raw.substr(he + 4);
  if (strcasecmp(r.header("transfer-encoding").c_str(), "chunked") == 0) {
    size_t p = 0;
    bool complete = false;
    while (p < rest.size()) {
      size_t e = rest.find("\r\n", p);
      if (e == std::string::npos) {
        break;
      }
      size_t len = std::strtoul(rest.substr(p, e - p).c_str(), nullptr, 16);
      if (len == 0) {
        complete = true;
        break;
      }
      if (e + 2 + len > rest.size()) {
        r.body.append(rest, e + 2, std::string::npos);
        break;
      }
      r.body.append(rest, e + 2, len);
      p = e + 2 + len + 2;
    }
    r.ok = complete;
  } else {
    r.body = rest;
    std::string cl = r.header("content-length");
    r.ok = cl.empty() || std::strtoul(cl.c_str(), nullptr, 10) == rest.size();
  }
  return r;
}

std::string rawExchange(int port, const std::string& bytes, int timeoutMs) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return out;
  }
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  int64_t deadline = nowMs() + timeoutMs;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int64_t left = deadline - nowMs();
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) {
      break;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

long metricValue(const std::string& metricsText, const std::string& series) {
  std::string needle = "\n" + series + " ";
  size_t p = metricsText.find(needle);
  if (p == std::string::npos) {
    return -1;
  }
  return std::stol(metricsText.substr(p + needle.size()));
}

std::string gatewayConfigYaml(const GatewayYaml& cfg) {
  std::string y = "server:\n  host: 127.0.0.1\n  port: 0\n";
  if (cfg.workerThreads > 0) {
    y += "  worker_threads: " + std::to_string(cfg.workerThreads) + "\n";
  }
  if (cfg.upstreamTimeoutMs > 0) {
    y += "  upstream_timeout_ms: " + std::to_string(cfg.upstreamTimeoutMs) + "\n";
  }
  if (cfg.drainTimeoutMs > 0) {
    y += "  drain_timeout_ms: " + std::to_string(cfg.drainTimeoutMs) + "\n";
  }
  y += "storage:\n  backend: " + cfg.backend + "\n  data_dir: " + cfg.dataDir + "\n";
  if (cfg.backend == "redis") {
    y += "  redis:\n    url: " + cfg.redisUrl + "\n    key_prefix: \"" + cfg.keyPrefix + "\"\n";
    if (cfg.redisPoolSize > 0) {
      y += "    pool_size: " + std::to_string(cfg.redisPoolSize) + "\n";
    }
  }
  y += "security:\n  master_key: " + cfg.masterKey + "\n";
  y += "logging:\n  level: info\n";
  y += "plugins:\n  directory: " + cfg.pluginDir + "\n  enabled:\n    - name: claude\n";
  y += "scheduler:\n  state_refresh_ms: " + std::to_string(cfg.stateRefreshMs) + "\n";
  return y + cfg.extra;
}

std::string writeGatewayConfig(const std::string& dir, const GatewayYaml& cfg) {
  std::string path = dir + "/relaygate.yaml";
  writeFile(path, gatewayConfigYaml(cfg));
  return path;
}

CommandResult runCli(const std::string& binary, const std::string& configPath,
                     std::vector<std::string> args) {
  args.insert(args.begin() + std::min<std::ptrdiff_t>(2, static_cast<std::ptrdiff_t>(args.size())),
              {"--config", configPath});
  return runCommand(binary, args);
}

std::string addConsoleAccount(const std::string& binary, const std::string& configPath,
                              const std::string& name, const std::string& baseUrl,
                              const std::string& apiKey, int priority,
                              const std::vector<std::string>& extra, CommandResult* result) {
  std::vector<std::string> args = {"accounts",  "add",  "--type",     "claude-console",
                                   "--name",    name,   "--base-url", baseUrl,
                                   "--api-key", apiKey, "--priority", std::to_string(priority)};
  args.insert(args.end(), extra.begin(), extra.end());
  CommandResult r = runCli(binary, configPath, args);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  std::string id = r.lastLine();
  EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f-]{36}"))) << r.out;
  if (result != nullptr) {
    *result = std::move(r);
  }
  return id;
}

std::string testKeyPrefix(const std::string& tag) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string prefix = tag + std::to_string(::getpid()) + "_" +
                       (info != nullptr ? std::string(info->name()) : std::string("none")) + ":";
  std::replace(prefix.begin(), prefix.end(), '/', '_');
  return prefix;
}

void expectLeasesReleasedAndNoSecrets(GatewayProcess& gw, const std::vector<std::string>& secrets,
                                      std::string* metricsOut, int timeoutMs, int stopTimeoutMs) {
  std::string text;
  bool zero = waitFor(
      [&] {
        text = httpRequest(gw.port(), "GET", "/metrics", {}, "").body;
        return text.find("\nrelaygate_leases_held 0\n") != std::string::npos &&
               text.find("\nrelaygate_account_leases_held 0\n") != std::string::npos;
      },
      timeoutMs);
  EXPECT_TRUE(zero) << text;
  gw.stop(SIGTERM, stopTimeoutMs);
  std::string logs = gw.stdoutText() + gw.stderrText() + text;
  if (::testing::Test::HasFailure()) {
    std::string err = gw.stderrText();
    std::cerr << "---- gateway log (tail) ----\n"
              << err.substr(err.size() > 8000 ? err.size() - 8000 : 0) << "\n";
  }
  for (const std::string& secret : secrets) {
    if (secret.size() >= 8) {
      EXPECT_EQ(logs.find(secret), std::string::npos)
          << "secret leaked into logs/metrics: " << secret.substr(0, 6) << "...";
    }
  }
  if (metricsOut != nullptr) {
    *metricsOut = text;
  }
}

}  // namespace rgtest
