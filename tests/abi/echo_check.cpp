// rg_echo_check <librg_echo.so>: loads an echo plugin build with the real PluginLoader and checks
// its manifest, routes and both hooks. Used by the out-of-tree SDK install test; exit 0 = pass.
#include <cstdio>
#include <string>

#include "plugin/host_objects.h"
#include "plugin/plugin_runtime.h"

namespace {

int gFailures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) {
    ++gFailures;
  }
}

rg_str s(const std::string& v) { return rg_str{v.data(), v.size()}; }

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <librg_echo.so>\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  auto m = rg::PluginLoader::readManifest(path);
  check(m.isOk(), "manifest readable: " + (m.isOk() ? std::string("yes") : m.status().message()));
  if (!m.isOk()) {
    return 1;
  }
  check(m->name == "echo", "name is echo: " + m->name);
  check(m->kind == RG_KIND_PROVIDER, "kind is provider");
  check(m->abiMajor == RG_ABI_MAJOR, "abi major");

  rg::PluginLoader loader(rg::HostServices{});
  auto bad = loader.loadProvider(path, "[]");
  check(!bad.isOk() && bad.status().message().find("config must be a JSON object") !=
                           std::string::npos,
        "bad config refused: " + bad.status().message());

  auto p = loader.loadProvider(path, "{}");
  check(p.isOk(), "loads: " + (p.isOk() ? std::string("yes") : p.status().message()));
  if (!p.isOk()) {
    return 1;
  }
  const auto& routes = (*p)->routes();
  check(routes.size() == 2, "two routes");
  if (routes.size() == 2) {
    check(routes[0].method == "POST" && routes[0].path == "/echo/v1/echo" &&
              routes[0].kind == RG_ROUTE_LOCAL,
          "LOCAL POST /echo/v1/echo");
    check(routes[1].method == "POST" && routes[1].path == "/echo/v1/relay" &&
              routes[1].kind == RG_ROUTE_RELAY && routes[1].accountTypes.size() == 1 &&
              routes[1].accountTypes[0] == "echo",
          "RELAY POST /echo/v1/relay on echo accounts");
  }

  std::string body = "hi \"there\"";
  std::string keyId = "key-1";
  rg_request req{};
  req.struct_size = sizeof(req);
  req.route_id = 1;
  req.method = s("POST");
  req.path = s("/echo/v1/echo");
  req.body = s(body);
  req.key_id = s(keyId);
  rg_host_stream st;
  rg_host_sink out;
  rg::Status ls = (*p)->handleLocal(&st, req, &out);
  check(ls.isOk(), "handleLocal ok " + ls.message());
  check(out.status == 200, "status 200");
  check(out.body == R"({"echo":"hi \"there\"","key_id":"key-1"})", "echo body: " + out.body);

  std::string base = "http://127.0.0.1:1234";
  std::string secret = "echo-secret";
  rg_account acct{};
  acct.struct_size = sizeof(acct);
  acct.base_url = s(base);
  acct.secret = s(secret);
  rg_host_sink up;
  rg::Status ts = (*p)->transformRequest(&st, req, acct, &up);
  check(ts.isOk(), "transformRequest ok " + ts.message());
  check(up.method == "POST" && up.url == "http://127.0.0.1:1234/echo", "upstream url: " + up.url);
  check(up.body == body, "upstream body");
  (*p)->streamDone(&st);
  check(st.doneCalled, "stream done");

  std::printf("%d failed\n", gFailures);
  return gFailures == 0 ? 0 : 1;
}
