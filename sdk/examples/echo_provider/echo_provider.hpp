#pragma once
// The echo provider: the smallest useful relaygate plugin.
//
//   POST /echo/v1/echo   LOCAL: answers {"echo": "<request body>", "key_id": "<caller's key id>"}
//   POST /echo/v1/relay  RELAY: forwards the body to <account base_url>/echo on an "echo" account
//
// Config (optional): {"greeting": "..."} is not parsed here to keep the example dependency-free;
// the constructor only rejects a config that is not a JSON object.

#include <string>
#include <string_view>
#include <vector>

#include "relaygate/provider.hpp"

namespace echo {

enum RouteId : uint32_t { kEcho = 1, kRelay = 2 };

class EchoProvider : public rg::sdk::Provider {
public:
  EchoProvider(rg::sdk::Host host, std::string_view configJson) : Provider(host) {
    if (configJson.empty() || configJson.front() != '{') {
      // Thrown errors become the create() status; the gateway refuses to start with this text.
      throw rg::sdk::Error(RG_E_INVALID_ARG, "config must be a JSON object");
    }
  }

  std::vector<rg::sdk::Route> routes() override {
    rg::sdk::Route echo;
    echo.method = "POST";
    echo.path = "/echo/v1/echo";
    echo.id = kEcho;
    echo.kind = RG_ROUTE_LOCAL;
    echo.shape = RG_SHAPE_OPENAI;

    rg::sdk::Route relay;
    relay.method = "POST";
    relay.path = "/echo/v1/relay";
    relay.id = kRelay;
    relay.kind = RG_ROUTE_RELAY;
    relay.shape = RG_SHAPE_OPENAI;
    relay.accountTypes = "echo";
    return {echo, relay};
  }

  // LOCAL: the plugin answers without any upstream.
  rg::sdk::Status handleLocal(rg::sdk::Stream& /*st*/, const rg::sdk::Request& req,
                              rg::sdk::ResponseWriter& out) override {
    std::string body = "{\"echo\":" + rg::sdk::jsonQuote(req.body()) +
                       ",\"key_id\":" + rg::sdk::jsonQuote(req.keyId()) + "}";
    out.json(200, body);
    host().counterAdd("echoes");
    return rg::sdk::Status::ok();
  }

  // RELAY: the host picked an "echo" account; describe the upstream request for it.
  rg::sdk::Status transformRequest(rg::sdk::Stream& /*st*/, const rg::sdk::Request& req,
                                   const rg::sdk::Account& account,
                                   rg::sdk::UpstreamWriter& out) override {
    out.start("POST", std::string(account.baseUrl()) + "/echo");
    out.header("content-type", req.header("content-type").value_or("application/octet-stream"));
    out.header("authorization", "Bearer " + std::string(account.secret()));
    out.body(req.body());
    return rg::sdk::Status::ok();
  }
};

} // namespace echo
