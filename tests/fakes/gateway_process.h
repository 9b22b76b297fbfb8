#pragma once
// Runs the real relaygate binary for integration tests: `serve` as a child process whose port is
// read from its stdout, and one-shot CLI commands. Output is captured in files for assertions.

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rgtest {

struct CommandResult {
  int exitCode = -1;
  std::string out;
  std::string err;
  // The last non-empty line of stdout (keys create prints the key there).
  std::string lastLine() const;
};

// Runs `binary args...` to completion with extra environment variables.
CommandResult runCommand(const std::string& binary, const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {}, int timeoutMs = 60000);

class GatewayProcess {
 public:
  // Starts `binary serve --config <config>`; waits until it prints its listening line (or exits).
  // Returns nullptr and fills *error when it does not come up in time.
  static std::unique_ptr<GatewayProcess> start(const std::string& binary,
                                               const std::string& configPath,
                                               const std::string& workDir,
                                               const std::map<std::string, std::string>& env,
                                               std::string* error, int timeoutMs = 30000);
  ~GatewayProcess();

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string baseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string stdoutText() const;
  std::string stderrText() const;
  // Sends `sig` and waits for exit; returns the exit status (128+signal when killed), -1 on
  // timeout.
  int stop(int sig, int timeoutMs = 30000);
  void kill9();
  bool running();

 private:
  GatewayProcess() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string outPath_;
  std::string errPath_;
  int exitStatus_ = -1;
};

// A minimal blocking HTTP/1.1 client over a raw socket, independent of the gateway's own client.
struct HttpResult {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // de-chunked
  std::string header(const std::string& name) const;
  bool ok = false;  // a complete response was read
  std::string error;
};

HttpResult httpRequest(int port, const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& body, int timeoutMs = 30000);

// Sends `bytes` as they are on a fresh connection and returns everything the server sends until
// it closes the connection or `timeoutMs` passes (for framing and keep-alive tests).
std::string rawExchange(int port, const std::string& bytes, int timeoutMs = 10000);

// Waits until `pred` is true or the deadline passes (polling; no fixed sleeps elsewhere).
bool waitFor(const std::function<bool()>& pred, int timeoutMs);

// One sample of /metrics text: an un-labelled series by its name, or a labelled one written out
// with its labels as the gateway prints them; -1 when the text has no such sample.
long metricValue(const std::string& metricsText, const std::string& series);

// The gateway YAML the end-to-end tests share. Optional values of 0 / "" leave the setting out.
struct GatewayYaml {
  std::string backend;  // "file" or "redis"
  std::string dataDir;
  std::string redisUrl;   // used only with backend "redis"
  std::string keyPrefix;  // a per-test prefix (testKeyPrefix) so tests can share one Redis
  std::string masterKey;
  std::string pluginDir;  // the claude plugin is enabled from here
  int workerThreads = 0;
  int upstreamTimeoutMs = 20000;
  int drainTimeoutMs = 5000;
  int redisPoolSize = 0;
  int stateRefreshMs = 100;  // scheduler.state_refresh_ms
  std::string extra;         // appended as is: more scheduler keys first, then whole sections
};

std::string gatewayConfigYaml(const GatewayYaml& cfg);

// Writes gatewayConfigYaml(cfg) to <dir>/relaygate.yaml and returns that path.
std::string writeGatewayConfig(const std::string& dir, const GatewayYaml& cfg);

// Runs the CLI command `args` of `binary` (its two words first: "accounts", "add", ...) with
// "--config <configPath>" after those two words.
CommandResult runCli(const std::string& binary, const std::string& configPath,
                     std::vector<std::string> args);

// `accounts add` of a claude-console account with `apiKey` on `baseUrl` at `priority`, plus
// `extra` arguments: expects success and the new id (a UUID, alone on the last line of stdout),
// and returns that id. The whole result goes to *result when given.
std::string addConsoleAccount(const std::string& binary, const std::string& configPath,
                              const std::string& name, const std::string& baseUrl,
                              const std::string& apiKey, int priority,
                              const std::vector<std::string>& extra = {},
                              CommandResult* result = nullptr);

// "<tag><pid>_<current test name>:" with '/' replaced, unique per process and parameterised test.
std::string testKeyPrefix(const std::string& tag);

// Polls /metrics until relaygate_leases_held and relaygate_account_leases_held are both 0 (a
// failure when they are not within timeoutMs), stops the gateway with SIGTERM, and expects none
// of `secrets` (those of 8+ characters; shorter ones are not meaningful) in its stdout, stderr or
// last metrics. Prints the tail of stderr when the test has failed. The last /metrics text is
// stored in *metricsOut when given.
void expectLeasesReleasedAndNoSecrets(GatewayProcess& gw, const std::vector<std::string>& secrets,
                                      std::string* metricsOut = nullptr, int timeoutMs = 15000,
                                      int stopTimeoutMs = 15000);

}  // namespace rgtest
