#include "http/server.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>

namespace rg {

namespace {

class Handler : public Poco::Net::HTTPRequestHandler {
public:
  explicit Handler(const RequestCallback& cb) : cb_(cb) {}
  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override {
    cb_(req, resp);
  }

private:
  const RequestCallback& cb_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
  explicit Factory(const RequestCallback& cb) : cb_(cb) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler(cb_);
  }

private:
  const RequestCallback& cb_;
};

} // namespace

HttpServer::HttpServer(ServerOptions opts, RequestCallback cb)
    : opts_(std::move(opts)), cb_(std::move(cb)) {}

HttpServer::~HttpServer() {
  if (server_) {
    try {
      server_->stopAll(true);
    } catch (...) {
    }
  }
}

Status HttpServer::start() {
  try {
    Poco::Net::SocketAddress addr(opts_.host, static_cast<Poco::UInt16>(opts_.port));
    Poco::Net::ServerSocket socket(addr, 1024);
    port_ = socket.address().port();
    // Small stacks: a relay thread needs little, and there is one per open stream.
    pool_ = std::make_unique<Poco::ThreadPool>("relaygate", 4, opts_.maxThreads, 60, 256 * 1024);
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(opts_.maxThreads);
    params->setMaxQueued(4096);
    params->setKeepAlive(true);
    params->setMaxKeepAliveRequests(0);
    params->setKeepAliveTimeout(Poco::Timespan(static_cast<long>(opts_.idleTimeoutMs) * 1000));
    params->setTimeout(Poco::Timespan(static_cast<long>(opts_.requestTimeoutMs) * 1000));
    params->setServerName("relaygate");
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(cb_), *pool_, socket, params);
    server_->start();
    return Status::ok();
  } catch (const Poco::Exception& e) {
    return unavailable("cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) + ": " +
                       e.displayText());
  }
}

void HttpServer::stopAccepting() {
  // Only the listener stops: stopAll(false) would block until every open stream ended, which
  // would make the drain timeout meaningless.
  if (server_) {
    server_->stop();
  }
}

void HttpServer::stopNow() {
  if (server_) {
    server_->stopAll(true);
  }
}

} // namespace rg
