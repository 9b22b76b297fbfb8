// Unit tests of the echo provider against the SDK's in-memory FakeHost: no gateway needed.
#include <gtest/gtest.h>

#include "echo_provider.hpp"
#include "relaygate/testing/fake_host.hpp"

using rg::sdk::testing::FakeHost;
using rg::sdk::testing::TestAccount;
using rg::sdk::testing::TestRequest;

TEST(Echo, DeclaresTwoRoutes) {
  FakeHost host;
  auto h = host.createProvider<echo::EchoProvider>("{}");
  ASSERT_TRUE(h.ok()) << h.createError();
  ASSERT_EQ(h.routes().size(), 2u);
  EXPECT_EQ(h.routes()[0].path, "/echo/v1/echo");
  EXPECT_EQ(h.routes()[1].accountTypes, "echo");
}

TEST(Echo, RejectsConfigThatIsNotAnObject) {
  FakeHost host;
  auto h = host.createProvider<echo::EchoProvider>("[1,2]");
  EXPECT_EQ(h.createResult().status, RG_E_INVALID_ARG);
  EXPECT_EQ(h.createError(), "config must be a JSON object");
}

TEST(Echo, LocalRouteEchoesTheBodyAsJson) {
  FakeHost host;
  auto h = host.createProvider<echo::EchoProvider>("{}");
  TestRequest req;
  req.routeId = echo::kEcho;
  req.body = "hello \"world\"";
  req.keyId = "k-42";
  auto resp = h.local(req);
  ASSERT_TRUE(resp.ok()) << resp.error;
  EXPECT_EQ(resp.httpStatus, 200u);
  EXPECT_EQ(resp.header("content-type"), "application/json");
  EXPECT_EQ(resp.body, R"({"echo":"hello \"world\"","key_id":"k-42"})");
  EXPECT_EQ(host.counter("echoes"), 1u);
}

TEST(Echo, RelayRouteForwardsToTheAccount) {
  FakeHost host;
  auto h = host.createProvider<echo::EchoProvider>("{}");
  TestRequest req;
  req.routeId = echo::kRelay;
  req.body = "{\"x\":1}";
  req.withHeader("Content-Type", "application/json");
  TestAccount acct;
  acct.baseUrl = "http://127.0.0.1:8080";
  acct.secret = "s3cret";
  auto up = h.transform(req, acct);
  ASSERT_TRUE(up.ok()) << up.error;
  EXPECT_EQ(up.method, "POST");
  EXPECT_EQ(up.url, "http://127.0.0.1:8080/echo");
  EXPECT_EQ(up.header("content-type"), "application/json");
  EXPECT_EQ(up.header("authorization"), "Bearer s3cret");
  EXPECT_EQ(up.body, "{\"x\":1}");
}
