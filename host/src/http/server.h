#pragma once
// POCO HTTPServer glue: a listening socket, a thread pool sized for concurrent streams, and a
// handler factory that hands every request to one callback.

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace Poco::Net {
class HTTPServer;
class HTTPServerRequest;
class HTTPServerResponse;
} // namespace Poco::Net
namespace Poco {
class ThreadPool;
} // namespace Poco

namespace rg {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int maxThreads = 256;
  int idleTimeoutMs = 65000;
  int requestTimeoutMs = 600000;
};

using RequestCallback =
    std::function<void(Poco::Net::HTTPServerRequest&, Poco::Net::HTTPServerResponse&)>;

class HttpServer {
public:
  HttpServer(ServerOptions opts, RequestCallback cb);
  ~HttpServer();
  Status start(); // binds and starts accepting
  int port() const { return port_; }
  // Stops accepting new connections; open connections keep being served (the gateway asks
  // their clients to close) until stopNow().
  void stopAccepting();
  // Aborts what is left (after the drain).
  void stopNow();

private:
  ServerOptions opts_;
  RequestCallback cb_;
  int port_ = 0;
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

} // namespace rg
