// Redis store: every key under the configured prefix, every check-and-modify in one Lua script
// (EVALSHA, EVAL on NOSCRIPT). Time comes from the injected Clock as a script argument, so scripts
// stay deterministic and all instances that share a Redis agree on one time base (their clocks).
// The key layout and the scripts are listed in docs/storage.md.
#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include "storage/redis/redis_client.h"
#include "storage/store.h"
#include "storage/store_util.h"
#include "storage/usage_codec.h"

namespace rg {

namespace {

using storage::ReplyPtr;

std::string sha1Hex(const std::string& s) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : md) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

struct Script {
  Script(const char* n, std::string b) : name(n), body(std::move(b)), sha(sha1Hex(body)) {}
  const char* name;
  std::string body;
  std::string sha;
};

// KEYS: key record, hash index, id set. ARGV: id, hash, field/value pairs.
constexpr const char* kKeyCreate = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 'id' end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'hash' end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 'ok'
)lua";

// KEYS: key record. ARGV: hash, field/value pairs.
constexpr const char* kKeyUpdate = R"lua(
local h = redis.call('HGET', KEYS[1], 'hash')
if not h then return 'missing' end
if h ~= ARGV[1] then return 'hash' end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 'ok'
)lua";

// KEYS: key record, hash index, id set. ARGV: id.
constexpr const char* kKeyRemove = R"lua(
local h = redis.call('HGET', KEYS[1], 'hash')
if not h then return 0 end
redis.call('HDEL', KEYS[2], h)
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
)lua";

// KEYS: hash index. ARGV: hash, key record prefix. The record key is derived from the index, which
// a cluster would reject; this backend targets a single Redis (or a primary with replicas).
constexpr const char* kKeyByHash = R"lua(
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return {} end
return redis.call('HGETALL', ARGV[2] .. id)
)lua";

// KEYS: account record, id set. ARGV: id, field/value pairs.
constexpr const char* kAcctCreate = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
)lua";

// KEYS: record. ARGV: field/value pairs. Replaces all fields of an existing record.
constexpr const char* kReplace = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
)lua";

// KEYS: account record, id set. ARGV: id.
constexpr const char* kAcctRemove = R"lua(
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
)lua";

// KEYS: record. ARGV: field, value. Sets one field of an existing record.
constexpr const char* kTouch = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

// One booking (record, or the usage part of a settle), one round trip. KEYS: [1] request id
// marker, then np plain counter hashes (field "<counter>"), then nm per-model hashes (field
// "<counter>:<model>"), then nz top-keys zsets, then (when cap > 0) the key's recent-records list,
// then for a settle: the key's reservation keys (expiry zset, estimate hash, totals hash), window
// hash and weekly counter. ARGV: [1] marker
// retention ms, [2] model, [3] check id (1/0), [4] np, [5] nm, [6] nz, [7] recent cap (0 = no
// push), [8] the record's JSON, [9] key id (top-keys member), [10] billed micro-USD, [11] settle
// (1/0), [12] request id (reservation field), [13] now, [14] weekly (1/0), [15] weekly ttl ms,
// [16] tokens (all kinds), [17 .. 16+n+nz] one PEXPIRE ttl per hash / zset ('0' = never expires),
// then counter name/value pairs (only the non-zero ones are sent). The C++ side decides which
// keys an event books, so the script stays a flat loop.
constexpr const char* kUsageRecordBody = R"lua(
local np, nm, nz = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local n = np + nm
local cap = tonumber(ARGV[7])
local settle = ARGV[11] == '1'
local s = 2 + n + nz
if cap > 0 then s = s + 1 end
if settle then
  -- The reservation goes whatever happens to the booking (a replayed settle drops it too), and
  -- so do the key's expired ones: O(log n + expired), never a walk over the live ones.
  local now = tonumber(ARGV[13])
  dropExpired(KEYS[s], KEYS[s + 1], KEYS[s + 2], now)
  dropOne(KEYS[s], KEYS[s + 1], KEYS[s + 2], ARGV[12])
end
if ARGV[3] == '1' then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
end
local model = ARGV[2]
for i = 17 + n + nz, #ARGV, 2 do
  local f, v = ARGV[i], ARGV[i + 1]
  for j = 2, 1 + np do redis.call('HINCRBY', KEYS[j], f, v) end
  if nm > 0 then
    local mf = f .. ':' .. model
    for j = 2 + np, 1 + n do redis.call('HINCRBY', KEYS[j], mf, v) end
  end
end
for j = 1, nz do redis.call('ZINCRBY', KEYS[1 + n + j], ARGV[10], ARGV[9]) end
for j = 1, n + nz do
  local ttl = ARGV[16 + j]
  if ttl ~= '0' then redis.call('PEXPIRE', KEYS[1 + j], ttl) end
end
if cap > 0 then
  redis.call('LPUSH', KEYS[2 + n + nz], ARGV[8])
  redis.call('LTRIM', KEYS[2 + n + nz], 0, cap - 1)
end
if settle then
  local now = tonumber(ARGV[13])
  local e = tonumber(redis.call('HGET', KEYS[s + 3], 'end'))
  if e and e > now then
    redis.call('HINCRBY', KEYS[s + 3], 'tokens', ARGV[16])
    redis.call('HINCRBY', KEYS[s + 3], 'cost', ARGV[10])
  end
  if ARGV[14] == '1' then
    redis.call('INCRBY', KEYS[s + 4], ARGV[10])
    redis.call('PEXPIRE', KEYS[s + 4], ARGV[15])
  end
end
return 1
)lua";

// ---- Admission. Reservations of a key, three keys so that admit / settle / renew / release cost
// O(log n + expired) whatever the number in flight: zset adm:rz:<keyId> (member requestId, score
// expiry ms), hash adm:rv:<keyId> (field requestId, value "<estTokens>:<estBilledMicroUsd>") and
// hash adm:rs:<keyId> (running sums of the live estimates: `tokens`, `cost`); the count is the
// zset's ZCARD. All three get the same PEXPIRE (2 x the ttl when below the ttl), so an idle key's
// reservations vanish together. Window: hash adm:win:<keyId> {end, requests, tokens, cost};
// weekly: string counter adm:wk:<week>:<keyId> (billed micro-USD). Numbers written by a script go
// through string.format('%d') (Lua numbers are doubles that print in exponent form when large;
// every value here stays far below 2^53).

// Lua helpers prepended to every script that touches reservations. dropExpired removes the
// members whose expiry is <= now (in chunks: unpack is limited by the Lua stack) and subtracts
// their estimates from the sums; dropOne removes one member. Both DEL the three keys when the
// last member goes, which also heals sums that a foreign write might have skewed.
constexpr const char* kReservationLib = R"lua(
local function unreserve(z, v, t, ids)
  local vals = redis.call('HMGET', v, unpack(ids))
  local dT, dC = 0, 0
  for _, e in ipairs(vals) do
    if e then
      local c = string.find(e, ':', 1, true)
      dT = dT + tonumber(string.sub(e, 1, c - 1))
      dC = dC + tonumber(string.sub(e, c + 1))
    end
  end
  redis.call('ZREM', z, unpack(ids))
  redis.call('HDEL', v, unpack(ids))
  if redis.call('ZCARD', z) == 0 then
    redis.call('DEL', z, v, t)
  else
    if dT ~= 0 then redis.call('HINCRBY', t, 'tokens', string.format('%d', -dT)) end
    if dC ~= 0 then redis.call('HINCRBY', t, 'cost', string.format('%d', -dC)) end
  end
end
local function dropExpired(z, v, t, now)
  while true do
    local ids = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 500)
    if #ids == 0 then return end
    unreserve(z, v, t, ids)
  end
end
local function dropOne(z, v, t, rid)
  if redis.call('ZSCORE', z, rid) then unreserve(z, v, t, {rid}) end
end
)lua";

// KEYS: [1] reservation zset, [2] estimates, [3] sums, [4] window, [5] the key's day bucket
// (u:k:d:<day>:<key>), [6] the key's lifetime hash, [7] weekly counter. ARGV: [1] now, [2] request
// id, [3] ttl, [4] est tokens, [5] est billed, [6] concurrency, [7] window ms, [8] window
// requests, [9] window tokens, [10] window cost, [11] daily cost, [12] total cost, [13] weekly
// cost (0 when not weekly). Returns {verdict, current, limit, window end, in flight}; verdict 0 =
// admitted, else the AdmitVerdict number.
constexpr const char* kAdmitBody = R"lua(
local now, rid, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local estT, estC = tonumber(ARGV[4]), tonumber(ARGV[5])
local conc, wms = tonumber(ARGV[6]), tonumber(ARGV[7])
dropExpired(KEYS[1], KEYS[2], KEYS[3], now)
local n = redis.call('ZCARD', KEYS[1])
local wEnd, wReq, wTok, wCost = 0, 0, 0, 0
if wms > 0 then
  local w = redis.call('HMGET', KEYS[4], 'end', 'requests', 'tokens', 'cost')
  local e = tonumber(w[1])
  if e and e > now then
    wEnd, wReq, wTok, wCost = e, tonumber(w[2]) or 0, tonumber(w[3]) or 0, tonumber(w[4]) or 0
  end
end
local function expireAll()
  -- Twice the ttl, so that this runs about once per ttl rather than on every admit.
  if redis.call('PTTL', KEYS[1]) < ttl then
    for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], 2 * ttl) end
  end
end
if redis.call('ZSCORE', KEYS[1], rid) then
  -- Already admitted: a fresh expiry, the estimate it was admitted with, no second count.
  redis.call('ZADD', KEYS[1], string.format('%d', now + ttl), rid)
  expireAll()
  return {0, 0, 0, wEnd, n}
end
if conc > 0 and n >= conc then return {1, n, conc, wEnd, n} end
local sums = redis.call('HMGET', KEYS[3], 'tokens', 'cost')
local rT, rC = tonumber(sums[1]) or 0, tonumber(sums[2]) or 0
if wms > 0 then
  local lim = tonumber(ARGV[8])
  if lim > 0 and wReq >= lim then return {2, wReq, lim, wEnd, n} end
  lim = tonumber(ARGV[9])
  if lim > 0 and wTok + rT + estT > lim then return {3, wTok + rT, lim, wEnd, n} end
  lim = tonumber(ARGV[10])
  if lim > 0 and wCost + rC + estC > lim then return {4, wCost + rC, lim, wEnd, n} end
end
local lim = tonumber(ARGV[11])
if lim > 0 then
  local cur = (tonumber(redis.call('HGET', KEYS[5], 'billedMicroUsd')) or 0) + rC
  if cur + estC > lim then return {5, cur, lim, wEnd, n} end
end
lim = tonumber(ARGV[12])
if lim > 0 then
  local cur = (tonumber(redis.call('HGET', KEYS[6], 'billedMicroUsd')) or 0) + rC
  if cur + estC > lim then return {6, cur, lim, wEnd, n} end
end
lim = tonumber(ARGV[13])
if lim > 0 then
  local cur = (tonumber(redis.call('GET', KEYS[7])) or 0) + rC
  if cur + estC > lim then return {7, cur, lim, wEnd, n} end
end
if wms > 0 then
  if wEnd == 0 then
    wEnd = now + wms
    redis.call('DEL', KEYS[4])
    redis.call('HSET', KEYS[4], 'end', string.format('%d', wEnd), 'requests', 1, 'tokens', 0,
               'cost', 0)
    redis.call('PEXPIRE', KEYS[4], wms)
  else
    redis.call('HINCRBY', KEYS[4], 'requests', 1)
  end
end
redis.call('ZADD', KEYS[1], string.format('%d', now + ttl), rid)
redis.call('HSET', KEYS[2], rid, string.format('%d:%d', estT, estC))
redis.call('HINCRBY', KEYS[3], 'tokens', string.format('%d', estT))
redis.call('HINCRBY', KEYS[3], 'cost', string.format('%d', estC))
expireAll()
return {0, 0, 0, wEnd, n + 1}
)lua";

// KEYS: reservation zset, estimates, sums. ARGV: now, request id, ttl.
constexpr const char* kAdmitRenewBody = R"lua(
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[3])
local e = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]))
if not e then return 0 end
if e <= now then
  dropOne(KEYS[1], KEYS[2], KEYS[3], ARGV[2])
  return 0
end
redis.call('ZADD', KEYS[1], string.format('%d', now + ttl), ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], 2 * ttl) end
end
return 1
)lua";

// KEYS: reservation zset, estimates, sums. ARGV: request id.
constexpr const char* kAdmitReleaseBody = R"lua(
dropOne(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
return 1
)lua";

// KEYS: reservation zset, estimates, sums, window, weekly counter (any name when none is asked).
// ARGV: now, read the weekly counter (1/0). Returns {window end, requests, tokens, cost, weekly,
// in flight, reserved tokens, reserved cost}.
constexpr const char* kAdmitStateBody = R"lua(
local now = tonumber(ARGV[1])
dropExpired(KEYS[1], KEYS[2], KEYS[3], now)
local sums = redis.call('HMGET', KEYS[3], 'tokens', 'cost')
local out = {0, 0, 0, 0, 0, redis.call('ZCARD', KEYS[1]), tonumber(sums[1]) or 0,
             tonumber(sums[2]) or 0}
local w = redis.call('HMGET', KEYS[4], 'end', 'requests', 'tokens', 'cost')
local e = tonumber(w[1])
if e and e > now then
  out[1], out[2], out[3], out[4] = e, tonumber(w[2]) or 0, tonumber(w[3]) or 0, tonumber(w[4]) or 0
end
if ARGV[2] == '1' then out[5] = tonumber(redis.call('GET', KEYS[5])) or 0 end
return out
)lua";

// The keys with the highest billed cost over several top-keys zsets (Redis 4 compatible: no
// ZUNION). KEYS: [1] a scratch key (it exists only inside this script; the PEXPIRE is a safety
// net), [2..] the buckets' zsets. ARGV: [1] limit. Returns member/score pairs: every member
// scoring above the limit-th score, then the members tied with it in key id order (ZRANGEBYSCORE
// orders equal scores by member, bytewise) up to `limit`, so at most `limit` pairs cross the wire.
constexpr const char* kTopKeys = R"lua(
local lim = tonumber(ARGV[1])
redis.call('ZUNIONSTORE', KEYS[1], #KEYS - 1, unpack(KEYS, 2))
redis.call('PEXPIRE', KEYS[1], 10000)
local out = redis.call('ZREVRANGE', KEYS[1], 0, lim - 1, 'WITHSCORES')
if #out == 2 * lim then
  local last = out[#out]
  out = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(' .. last, 'WITHSCORES')
  local ties = redis.call('ZRANGEBYSCORE', KEYS[1], last, last, 'WITHSCORES', 'LIMIT', 0,
                          lim - #out / 2)
  for _, v in ipairs(ties) do out[#out + 1] = v end
end
redis.call('DEL', KEYS[1])
return out
)lua";

// ---- One-time migration of the usage totals of versions before the time buckets (usage:key:<id>,
// usage:acct:<id>, usage:keyday:<id>:<day>, usage:keymodels:<id>:<day>; fields = the TokenCounts
// names, "<counter>:<model>" for keymodels). Those versions booked every event there (the one
// right before also booked the buckets), so, as the embedded backend does with such a snapshot
// (finishLegacyUsage), an old total REPLACES the new hash it maps to, and the per-model lifetime
// gets what the key+model totals add. One script per old key, which DELs it: a crash mid-way
// resumes where it stopped and never adds twice.

// KEYS: [1] old hash, [2] new hash. Lifetime of a key or an account.
constexpr const char* kMigrateTotal = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local f = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[2])
if #f > 0 then redis.call('HSET', KEYS[2], unpack(f)) end
redis.call('DEL', KEYS[1])
return 1
)lua";

// KEYS: [1] old hash, [2] the key's day bucket, [3] the day's top-keys zset. ARGV: [1] day
// retention ms ('0' = never expires), [2] key id. A bucket that exists keeps its expiry, a new one
// lives for the day retention from now (as the embedded conversion does).
constexpr const char* kMigrateDay = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local f = redis.call('HGETALL', KEYS[1])
local pttl = redis.call('PTTL', KEYS[2])
redis.call('DEL', KEYS[2])
if #f > 0 then
  redis.call('HSET', KEYS[2], unpack(f))
  if pttl > 0 then redis.call('PEXPIRE', KEYS[2], pttl)
  elseif pttl == -2 and ARGV[1] ~= '0' then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
  local billed = redis.call('HGET', KEYS[2], 'billedMicroUsd') or '0'
  local tpttl = redis.call('PTTL', KEYS[3])
  redis.call('ZADD', KEYS[3], billed, ARGV[2])
  if tpttl == -2 and ARGV[1] ~= '0' then redis.call('PEXPIRE', KEYS[3], ARGV[1]) end
end
redis.call('DEL', KEYS[1])
return 1
)lua";

// KEYS: [1] old hash, [2] the key+model day bucket, [3] the key+model lifetime, [4] the set of
// (key, model) lifetimes already replaced by this migration. ARGV: [1] day retention ms, [2] key
// id, [3] the per-model lifetime key prefix (u:m:life:, derived in the script like kKeyByHash),
// [4..] the counter names. The first old day of a (key, model) replaces its lifetime, later days
// add to it; the model's lifetime changes by as much.
constexpr const char* kMigrateModels = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local f = redis.call('HGETALL', KEYS[1])
local byModel, names = {}, {}
for i = 1, #f, 2 do
  local c = string.find(f[i], ':', 1, true)
  if c then
    local m = string.sub(f[i], c + 1)
    if not byModel[m] then byModel[m] = {}; names[#names + 1] = m end
    byModel[m][string.sub(f[i], 1, c - 1)] = f[i + 1]
  end
end
table.sort(names)
local pttl = redis.call('PTTL', KEYS[2])
for _, m in ipairs(names) do
  local first = redis.call('HSETNX', KEYS[4], ARGV[2] .. '\n' .. m, '1') == 1
  for i = 4, #ARGV do
    local counter = ARGV[i]
    local field = counter .. ':' .. m
    local v = tonumber(byModel[m][counter]) or 0
    redis.call('HSET', KEYS[2], field, string.format('%d', v))
    local delta = v
    if first then
      delta = v - (tonumber(redis.call('HGET', KEYS[3], field)) or 0)
      redis.call('HSET', KEYS[3], field, string.format('%d', v))
    else
      redis.call('HINCRBY', KEYS[3], field, string.format('%d', v))
    end
    if delta ~= 0 then
      redis.call('HINCRBY', ARGV[3] .. m, counter, string.format('%d', delta))
    end
  end
end
if pttl == -2 and ARGV[1] ~= '0' then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
redis.call('PEXPIRE', KEYS[4], 7 * 86400000)
redis.call('DEL', KEYS[1])
return 1
)lua";

// KEYS: lease zset (member holder, score expiry). ARGV: now, holder, limit, ttl.
constexpr const char* kLeaseAcquire = R"lua(
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[2])
local n = redis.call('ZCARD', KEYS[1])
if not held and limit > 0 and n >= limit then return {0, n} end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return {1, redis.call('ZCARD', KEYS[1])}
)lua";

// KEYS: lease zset. ARGV: now, holder, ttl.
constexpr const char* kLeaseRenew = R"lua(
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
)lua";

// ---- Scheduler state. Time is the Clock's (an argument), as for leases; PX only garbage-collects.

// KEYS: cooldowns hash. ARGV: field prefix "<accountId>|" (account ids never contain '|').
constexpr const char* kCooldownClearAll = R"lua(
local n = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, #ARGV[1]) == ARGV[1] then
    redis.call('HDEL', KEYS[1], f)
    n = n + 1
  end
end
return n
)lua";

// KEYS: cooldowns hash. ARGV: field/value pairs seen expired. Compare-and-delete, so a record
// another instance replaced in the meantime stays.
constexpr const char* kCooldownPrune = R"lua(
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 1
)lua";

// Sticky mapping key value: "<expiresAtMs>:<accountId>". Reverse index per account: a zset of
// session hashes scored by expiry, trimmed of expired members on every write so it stays bounded.
// KEYS: mapping. ARGV: now, ttl, accountId, hash, reverse-index key prefix, expiry (now + ttl,
// computed by the caller: Lua numbers are doubles and print in exponent form when large).
constexpr const char* kStickySet = R"lua(
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local old = redis.call('GET', KEYS[1])
if old then
  local acct = string.sub(old, string.find(old, ':', 1, true) + 1)
  if acct ~= ARGV[3] then redis.call('ZREM', ARGV[5] .. acct, ARGV[4]) end
end
local exp = ARGV[6]
redis.call('SET', KEYS[1], exp .. ':' .. ARGV[3], 'PX', ttl)
local rev = ARGV[5] .. ARGV[3]
redis.call('ZREMRANGEBYSCORE', rev, '-inf', now)
redis.call('ZADD', rev, exp, ARGV[4])
if redis.call('PTTL', rev) < ttl then redis.call('PEXPIRE', rev, ttl) end
return 1
)lua";

// KEYS: mapping. ARGV: hash, reverse-index key prefix.
constexpr const char* kStickyDelete = R"lua(
local old = redis.call('GET', KEYS[1])
if not old then return 0 end
redis.call('ZREM', ARGV[2] .. string.sub(old, string.find(old, ':', 1, true) + 1), ARGV[1])
redis.call('DEL', KEYS[1])
return 1
)lua";

// KEYS: reverse index. ARGV: now, accountId, mapping key prefix. Deletes the mappings that still
// point to the account; returns how many of them were live.
constexpr const char* kStickyDeleteForAccount = R"lua(
local now = tonumber(ARGV[1])
local n = 0
for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[3] .. h
  local v = redis.call('GET', key)
  if v then
    local colon = string.find(v, ':', 1, true)
    if string.sub(v, colon + 1) == ARGV[2] then
      if tonumber(string.sub(v, 1, colon - 1)) > now then n = n + 1 end
      redis.call('DEL', key)
    end
  end
end
redis.call('DEL', KEYS[1])
return n
)lua";

// Lock value: "<expiresAtMs>:<token>". KEYS: lock. ARGV: now, ttl, token, expiry (now + ttl).
constexpr const char* kLockTry = R"lua(
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('GET', KEYS[1])
if v and tonumber(string.sub(v, 1, string.find(v, ':', 1, true) - 1)) > now then return 0 end
redis.call('SET', KEYS[1], ARGV[4] .. ':' .. ARGV[3], 'PX', ttl)
return 1
)lua";

// KEYS: lock. ARGV: now, token. Compare-and-delete; 1 only when the token held a live lock.
constexpr const char* kUnlock = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local colon = string.find(v, ':', 1, true)
if string.sub(v, colon + 1) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(string.sub(v, 1, colon - 1)) > tonumber(ARGV[1]) then return 1 end
return 0
)lua";


std::string replyStr(const redisReply* r) {
  if (r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                       r->type == REDIS_REPLY_ERROR)) {
    return std::string(r->str, r->len);
  }
  return {};
}

int64_t toInt(const std::string& s) {
  return s.empty() ? 0 : std::strtoll(s.c_str(), nullptr, 10);
}

int64_t replyInt(const redisReply* r) {
  if (r == nullptr) {
    return 0;
  }
  if (r->type == REDIS_REPLY_INTEGER) {
    return r->integer;
  }
  return toInt(replyStr(r));
}

using Fields = std::map<std::string, std::string>;

// HGETALL reply -> field map.
Fields replyFields(const redisReply* r) {
  Fields f;
  if (r != nullptr && r->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
      f[replyStr(r->element[i])] = replyStr(r->element[i + 1]);
    }
  }
  return f;
}

std::string field(const Fields& f, const char* k) {
  auto it = f.find(k);
  return it == f.end() ? std::string() : it->second;
}

std::string encodeList(const std::vector<std::string>& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartArray();
  for (const std::string& s : v) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  w.EndArray();
  return std::string(sb.GetString(), sb.GetSize());
}

std::vector<std::string> decodeList(const std::string& text) {
  std::vector<std::string> out;
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (!d.HasParseError() && d.IsArray()) {
    for (const auto& v : d.GetArray()) {
      if (v.IsString()) {
        out.emplace_back(v.GetString(), v.GetStringLength());
      }
    }
  }
  return out;
}

// A string map as one hash field: a JSON object of strings.
std::string encodeMap(const std::map<std::string, std::string>& m) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  for (const auto& [name, value] : m) {
    w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::map<std::string, std::string> decodeMap(const std::string& text) {
  std::map<std::string, std::string> out;
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (!d.HasParseError() && d.IsObject()) {
    for (const auto& m : d.GetObject()) {
      if (m.value.IsString()) {
        out.emplace(std::string(m.name.GetString(), m.name.GetStringLength()),
                    std::string(m.value.GetString(), m.value.GetStringLength()));
      }
    }
  }
  return out;
}

std::vector<std::string> keyFields(const ApiKeyRecord& r) {
  return {"id",
          r.id,
          "name",
          r.name,
          "hash",
          r.hash,
          "enabled",
          r.enabled ? "1" : "0",
          "createdAtMs",
          std::to_string(r.createdAtMs),
          "updatedAtMs",
          std::to_string(r.updatedAtMs),
          "expiresAtMs",
          std::to_string(r.expiresAtMs),
          "permissions",
          encodeList(r.permissions),
          "concurrencyLimit",
          std::to_string(r.concurrencyLimit),
          "rateWindowMinutes",
          std::to_string(r.rateWindowMinutes),
          "rateRequests",
          std::to_string(r.rateRequests),
          "rateTokens",
          std::to_string(r.rateTokens),
          "modelMode",
          std::to_string(static_cast<int>(r.modelMode)),
          "models",
          encodeList(r.models),
          "bindings",
          encodeMap(r.bindings),
          "rateCostMicroUsd",
          std::to_string(r.rateCostMicroUsd),
          "dailyCostMicroUsd",
          std::to_string(r.dailyCostMicroUsd),
          "totalCostMicroUsd",
          std::to_string(r.totalCostMicroUsd),
          "weeklyCostMicroUsd",
          std::to_string(r.weeklyCostMicroUsd),
          "weeklyResetDay",
          std::to_string(r.weeklyResetDay),
          "weeklyResetHour",
          std::to_string(r.weeklyResetHour),
          "ratePpm",
          std::to_string(r.ratePpm),
          "activationMs",
          std::to_string(r.activationMs),
          "activatedAtMs",
          std::to_string(r.activatedAtMs)};
}

ApiKeyRecord keyFromFields(const Fields& f) {
  ApiKeyRecord r;
  r.id = field(f, "id");
  r.name = field(f, "name");
  r.hash = field(f, "hash");
  r.enabled = field(f, "enabled") != "0";
  r.createdAtMs = toInt(field(f, "createdAtMs"));
  r.updatedAtMs = toInt(field(f, "updatedAtMs"));
  r.expiresAtMs = toInt(field(f, "expiresAtMs"));
  r.permissions = decodeList(field(f, "permissions"));
  r.concurrencyLimit = toInt(field(f, "concurrencyLimit"));
  r.rateWindowMinutes = toInt(field(f, "rateWindowMinutes"));
  r.rateRequests = toInt(field(f, "rateRequests"));
  r.rateTokens = toInt(field(f, "rateTokens"));
  int64_t mode = toInt(field(f, "modelMode"));
  r.modelMode =
      mode >= 0 && mode <= 2 ? static_cast<ModelFilterMode>(mode) : ModelFilterMode::kNone;
  r.models = decodeList(field(f, "models"));
  r.bindings = decodeMap(field(f, "bindings"));  // absent in hashes written before bindings
  // Absent in hashes written before cost limits: the record's defaults.
  r.rateCostMicroUsd = toInt(field(f, "rateCostMicroUsd"));
  r.dailyCostMicroUsd = toInt(field(f, "dailyCostMicroUsd"));
  r.totalCostMicroUsd = toInt(field(f, "totalCostMicroUsd"));
  r.weeklyCostMicroUsd = toInt(field(f, "weeklyCostMicroUsd"));
  if (f.count("weeklyResetDay") != 0) {
    r.weeklyResetDay = toInt(field(f, "weeklyResetDay"));
  }
  r.weeklyResetHour = toInt(field(f, "weeklyResetHour"));
  if (f.count("ratePpm") != 0) {
    r.ratePpm = toInt(field(f, "ratePpm"));
  }
  r.activationMs = toInt(field(f, "activationMs"));
  r.activatedAtMs = toInt(field(f, "activatedAtMs"));
  return r;
}

std::vector<std::string> acctFields(const AccountRecord& r) {
  return {"id",
          r.id,
          "name",
          r.name,
          "type",
          r.type,
          "baseUrl",
          r.baseUrl,
          "secretSealed",
          r.secretSealed,
          "priority",
          std::to_string(r.priority),
          "schedulable",
          r.schedulable ? "1" : "0",
          "status",
          r.status,
          "statusReason",
          r.statusReason,
          "createdAtMs",
          std::to_string(r.createdAtMs),
          "updatedAtMs",
          std::to_string(r.updatedAtMs),
          "lastUsedAtMs",
          std::to_string(r.lastUsedAtMs),
          "provider",
          r.provider,
          "sharing",
          r.sharing,
          "groups",
          encodeList(r.groups),
          "concurrencyLimit",
          std::to_string(r.concurrencyLimit),
          "modelMapping",
          encodeMap(r.modelMapping),
          "proxyUrl",
          r.proxyUrl,
          "subscriptionExpiresAtMs",
          std::to_string(r.subscriptionExpiresAtMs),
          "settingsJson",
          r.settingsJson,
          "secretsSealed",
          encodeMap(r.secretsSealed)};
}

AccountRecord acctFromFields(const Fields& f) {
  AccountRecord r;
  r.id = field(f, "id");
  r.name = field(f, "name");
  r.type = field(f, "type");
  r.baseUrl = field(f, "baseUrl");
  r.secretSealed = field(f, "secretSealed");
  r.priority = toInt(field(f, "priority"));
  r.schedulable = field(f, "schedulable") != "0";
  r.status = field(f, "status");
  r.statusReason = field(f, "statusReason");
  r.createdAtMs = toInt(field(f, "createdAtMs"));
  r.updatedAtMs = toInt(field(f, "updatedAtMs"));
  r.lastUsedAtMs = toInt(field(f, "lastUsedAtMs"));
  // Hashes written before these fields existed keep the record's defaults.
  r.provider = field(f, "provider");
  if (f.count("sharing") != 0) {
    r.sharing = field(f, "sharing");
  }
  r.groups = decodeList(field(f, "groups"));
  r.concurrencyLimit = toInt(field(f, "concurrencyLimit"));
  r.modelMapping = decodeMap(field(f, "modelMapping"));
  r.proxyUrl = field(f, "proxyUrl");
  r.subscriptionExpiresAtMs = toInt(field(f, "subscriptionExpiresAtMs"));
  if (f.count("settingsJson") != 0) {
    r.settingsJson = field(f, "settingsJson");
  }
  r.secretsSealed = decodeMap(field(f, "secretsSealed"));
  return r;
}

TokenCounts countsFromFields(const Fields& f) {
  TokenCounts c;
  for (const auto& tf : storage::kTokenFields) {
    c.*tf.member = toInt(field(f, tf.name));
  }
  return c;
}

// A per-model hash (fields "<counter>:<model>": counter names have no ':', model names may).
std::map<std::string, TokenCounts> modelCountsFromFields(const Fields& fields) {
  std::map<std::string, TokenCounts> out;
  for (const auto& [name, value] : fields) {
    size_t colon = name.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string counter = name.substr(0, colon);
    TokenCounts& c = out[name.substr(colon + 1)];
    for (const auto& f : storage::kTokenFields) {
      if (counter == f.name) {
        c.*f.member = toInt(value);
      }
    }
  }
  return out;
}

// Issue-4 aggregate key names: "u:<dim>:<b>:<bucket>:<id>" and "u:<dim>:life:<id>". The dim,
// bucket kind and bucket never contain ':', and the free-form id comes last, so no two
// (dim, bucket, id) share a name whatever the id holds.
const char* dimCode(UsageDim d) {
  switch (d) {
    case UsageDim::kKey:
      return "k";
    case UsageDim::kAccount:
      return "a";
    case UsageDim::kModel:
      return "m";
    case UsageDim::kKeyModel:
      return "km";
  }
  return "?";
}

const char* bucketCode(UsageBucket b) {
  switch (b) {
    case UsageBucket::kHour:
      return "h";
    case UsageBucket::kDay:
      return "d";
    case UsageBucket::kMonth:
      return "m";
  }
  return "?";
}

std::string bucketKeySuffix(UsageDim d, UsageBucket b, const std::string& bucket,
                            const std::string& id) {
  return std::string("u:") + dimCode(d) + ":" + bucketCode(b) + ":" + bucket + ":" + id;
}

std::string lifeKeySuffix(UsageDim d, const std::string& id) {
  return std::string("u:") + dimCode(d) + ":life:" + id;
}

// Top-keys index of one bucket: "u:top:<b>:<bucket>", members key ids, scores billed micro-USD.
std::string topKeySuffix(UsageBucket b, const std::string& bucket) {
  return std::string("u:top:") + bucketCode(b) + ":" + bucket;
}

// The weekly admission counter: "adm:wk:<week>:<keyId>" (the week label has no ':').
std::string weekKeySuffix(const std::string& week, const std::string& keyId) {
  return "adm:wk:" + week + ":" + keyId;
}

// The reservation keys of a key (see kReservationLib): expiry zset, estimates, sums.
template <typename S>
std::vector<std::string> reservationKeys(S& s, const std::string& keyId) {
  return {s.k("adm:rz:" + keyId), s.k("adm:rv:" + keyId), s.k("adm:rs:" + keyId)};
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class RedisStore;

class RedisKeys final : public KeyStore {
 public:
  explicit RedisKeys(RedisStore& s) : s_(s) {}
  Status create(const ApiKeyRecord& rec) override;
  StatusOr<std::optional<ApiKeyRecord>> getById(const std::string& id) override;
  StatusOr<std::optional<ApiKeyRecord>> getByHash(const std::string& hash) override;
  StatusOr<std::vector<ApiKeyRecord>> list() override;
  Status update(const ApiKeyRecord& rec) override;
  Status remove(const std::string& id) override;

 private:
  RedisStore& s_;
};

class RedisAccounts final : public AccountStore {
 public:
  explicit RedisAccounts(RedisStore& s) : s_(s) {}
  Status create(const AccountRecord& rec) override;
  StatusOr<std::optional<AccountRecord>> get(const std::string& id) override;
  StatusOr<std::vector<AccountRecord>> list() override;
  Status update(const AccountRecord& rec) override;
  Status remove(const std::string& id) override;
  Status touchLastUsed(const std::string& id, int64_t unixMs) override;

 private:
  RedisStore& s_;
};

class RedisUsage final : public UsageStore {
 public:
  explicit RedisUsage(RedisStore& s) : s_(s) {}
  StatusOr<bool> record(const UsageEvent& ev) override;
  void setRetention(const UsageRetention& r) override;
  StatusOr<std::vector<UsageEvent>> recent(const std::string& keyId, size_t limit) override;
  StatusOr<std::vector<UsagePoint>> series(UsageDim dim, const std::string& id,
                                           UsageBucket bucket,
                                           const std::vector<std::string>& buckets) override;
  StatusOr<TokenCounts> lifetime(UsageDim dim, const std::string& id) override;
  StatusOr<std::vector<KeyCost>> topKeys(UsageBucket bucket, const std::vector<std::string>& buckets,
                                         size_t limit) override;

  // What a settle adds to a booking (nullptr for record()).
  StatusOr<bool> book(const UsageEvent& raw, const SettleRequest* settle);

 private:
  StatusOr<TokenCounts> counts(const std::string& key);
  RedisStore& s_;
  // Read on every record(); atomics so that setRetention needs no lock on the hot path.
  std::atomic<int64_t> hourlyMs_{UsageRetention().hourlyMs};
  std::atomic<int64_t> dailyMs_{UsageRetention().dailyMs};
  std::atomic<int64_t> monthlyMs_{UsageRetention().monthlyMs};
  std::atomic<int64_t> recentPerKey_{UsageRetention().recentPerKey};
};

class RedisLimits final : public LimitStore {
 public:
  explicit RedisLimits(RedisStore& s) : s_(s) {}
  StatusOr<LeaseResult> acquireLease(const std::string& scope, const std::string& holder,
                                     int64_t limit, int64_t ttlMs) override;
  StatusOr<bool> renewLease(const std::string& scope, const std::string& holder,
                            int64_t ttlMs) override;
  Status releaseLease(const std::string& scope, const std::string& holder) override;
  StatusOr<int64_t> leaseCount(const std::string& scope) override;

 private:
  RedisStore& s_;
};

class RedisAdmission final : public AdmissionStore {
 public:
  explicit RedisAdmission(RedisStore& s) : s_(s) {}
  StatusOr<AdmitResult> admit(const AdmitRequest& req) override;
  StatusOr<bool> renew(const std::string& keyId, const std::string& requestId,
                       int64_t ttlMs) override;
  StatusOr<bool> settle(const SettleRequest& req) override;
  Status release(const std::string& keyId, const std::string& requestId) override;
  StatusOr<AdmissionState> state(const std::string& keyId, const std::string& week) override;

 private:
  RedisStore& s_;
};

class RedisSched final : public SchedStore {
 public:
  explicit RedisSched(RedisStore& s) : s_(s) {}
  Status setCooldown(const CooldownRecord& rec) override;
  Status clearCooldown(const std::string& accountId,
                       const std::optional<std::string>& scope) override;
  StatusOr<std::vector<CooldownRecord>> listCooldowns() override;
  StatusOr<std::optional<StickyRecord>> getSticky(const std::string& sessionHash) override;
  Status setSticky(const std::string& sessionHash, const std::string& accountId,
                   int64_t ttlMs) override;
  Status deleteSticky(const std::string& sessionHash) override;
  StatusOr<int64_t> deleteStickyForAccount(const std::string& accountId) override;
  StatusOr<bool> tryLock(const std::string& name, const std::string& token, int64_t ttlMs) override;
  StatusOr<bool> unlock(const std::string& name, const std::string& token) override;

 private:
  RedisStore& s_;
};

class RedisKv final : public KvStore {
 public:
  RedisKv(RedisStore& s, std::string ns) : s_(s), ns_(std::move(ns)) {}
  StatusOr<std::optional<std::string>> get(const std::string& key) override;
  Status set(const std::string& key, const std::string& value, int64_t ttlMs) override;
  Status del(const std::string& key) override;

 private:
  RedisStore& s_;
  std::string ns_;  // "set:" or "kv:"
};

class RedisStore final : public Store {
 public:
  RedisStore(storage::RedisEndpoint ep, std::string prefix, const Clock& clock)
      : client_(std::move(ep)),
        prefix_(std::move(prefix)),
        clock_(clock),
        keys_(*this),
        accounts_(*this),
        usage_(*this),
        limits_(*this),
        sched_(*this),
        admission_(*this),
        settings_(*this, "set:"),
        pluginKv_(*this, "kv:") {}

  const char* backendName() const override { return "redis"; }
  Status ping() override {
    auto r = cmd({"PING"});
    return r ? Status::ok() : r.status();
  }
  KeyStore& keys() override { return keys_; }
  AccountStore& accounts() override { return accounts_; }
  UsageStore& usage() override { return usage_; }
  LimitStore& limits() override { return limits_; }
  SchedStore& sched() override { return sched_; }
  AdmissionStore& admission() override { return admission_; }
  KvStore& settings() override { return settings_; }
  KvStore& pluginKv() override { return pluginKv_; }
  uint64_t errorCount() const override { return errors_.load(); }

  RedisUsage& usageImpl() { return usage_; }
  std::string k(const std::string& suffix) const { return prefix_ + suffix; }
  int64_t now() const { return clock_.nowUnixMs(); }

  // One command; an error reply becomes kUnavailable.
  StatusOr<ReplyPtr> cmd(const std::vector<std::string>& argv) {
    auto r = client_.command(argv);
    if (!r) {
      return fail(r.status(), argv.front());
    }
    if (r.value()->type == REDIS_REPLY_ERROR) {
      return fail(unavailable("redis " + argv.front() + " failed: " + replyStr(r.value().get())),
                  argv.front());
    }
    return r;
  }

  // Several commands in one round trip; any error reply fails the whole call.
  StatusOr<std::vector<ReplyPtr>> pipe(const std::vector<std::vector<std::string>>& cmds) {
    if (cmds.empty()) {
      return std::vector<ReplyPtr>();
    }
    auto r = client_.pipeline(cmds);
    if (!r) {
      return fail(r.status(), cmds.front().front());
    }
    for (const ReplyPtr& rep : r.value()) {
      if (rep->type == REDIS_REPLY_ERROR) {
        return fail(unavailable("redis pipeline failed: " + replyStr(rep.get())),
                    cmds.front().front());
      }
    }
    return r;
  }

  // EVALSHA, and EVAL when the server does not have the script cached (restart, SCRIPT FLUSH).
  StatusOr<ReplyPtr> eval(const Script& s, const std::vector<std::string>& keys,
                          const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"EVALSHA", s.sha, std::to_string(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = client_.command(argv);
    if (r && r.value()->type == REDIS_REPLY_ERROR &&
        replyStr(r.value().get()).rfind("NOSCRIPT", 0) == 0) {
      argv[0] = "EVAL";
      argv[1] = s.body;
      r = client_.command(argv);
    }
    if (!r) {
      return fail(r.status(), s.name);
    }
    if (r.value()->type == REDIS_REPLY_ERROR) {
      return fail(unavailable(std::string("redis script ") + s.name +
                              " failed: " + replyStr(r.value().get())),
                  s.name);
    }
    return r;
  }

  // The one-time migration of the older usage totals (see kMigrateTotal); a marker key makes
  // later opens skip the SCAN.
  Status migrateLegacyUsage();

  Status fail(Status st, const std::string& what) {
    uint64_t n = ++errors_;
    // Rate-limit the log: the first errors, then every 100th (a down Redis fails every request).
    if (n <= 10 || n % 100 == 0) {
      spdlog::warn("storage error #{} ({}): {}", n, what, st.message());
    }
    return st;
  }

  Script keyCreate_{"keyCreate", kKeyCreate};
  Script keyUpdate_{"keyUpdate", kKeyUpdate};
  Script keyRemove_{"keyRemove", kKeyRemove};
  Script keyByHash_{"keyByHash", kKeyByHash};
  Script acctCreate_{"acctCreate", kAcctCreate};
  Script replace_{"replace", kReplace};
  Script acctRemove_{"acctRemove", kAcctRemove};
  Script touch_{"touch", kTouch};
  Script usageRecord_{"usageRecord", std::string(kReservationLib) + kUsageRecordBody};
  Script topKeys_{"topKeys", kTopKeys};
  Script migrateTotal_{"migrateTotal", kMigrateTotal};
  Script migrateDay_{"migrateDay", kMigrateDay};
  Script migrateModels_{"migrateModels", kMigrateModels};
  Script leaseAcquire_{"leaseAcquire", kLeaseAcquire};
  Script leaseRenew_{"leaseRenew", kLeaseRenew};
  Script admit_{"admit", std::string(kReservationLib) + kAdmitBody};
  Script admitRenew_{"admitRenew", std::string(kReservationLib) + kAdmitRenewBody};
  Script admitRelease_{"admitRelease", std::string(kReservationLib) + kAdmitReleaseBody};
  Script admitState_{"admitState", std::string(kReservationLib) + kAdmitStateBody};
  Script cooldownClearAll_{"cooldownClearAll", kCooldownClearAll};
  Script cooldownPrune_{"cooldownPrune", kCooldownPrune};
  Script stickySet_{"stickySet", kStickySet};
  Script stickyDelete_{"stickyDelete", kStickyDelete};
  Script stickyDeleteForAccount_{"stickyDeleteForAccount", kStickyDeleteForAccount};
  Script lockTry_{"lockTry", kLockTry};
  Script unlock_{"unlock", kUnlock};

 private:
  storage::RedisClient client_;
  std::string prefix_;
  const Clock& clock_;
  std::atomic<uint64_t> errors_{0};
  RedisKeys keys_;
  RedisAccounts accounts_;
  RedisUsage usage_;
  RedisLimits limits_;
  RedisSched sched_;
  RedisAdmission admission_;
  RedisKv settings_;
  RedisKv pluginKv_;
};

// ---- Legacy usage migration -------------------------------------------------------------------

Status RedisStore::migrateLegacyUsage() {
  const std::string marker = k("migr:usage-buckets");
  auto done = cmd({"EXISTS", marker});
  if (!done) {
    return done.status();
  }
  if (replyInt(done.value().get()) == 1) {
    return Status::ok();
  }
  std::string pattern;  // the prefix as a SCAN glob, literally
  for (char c : prefix_) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      pattern.push_back('\\');
    }
    pattern.push_back(c);
  }
  pattern += "usage:*";
  const std::string dayMs = std::to_string(std::max<int64_t>(0, UsageRetention().dailyMs));
  std::vector<std::string> counters;
  for (const auto& f : storage::kTokenFields) {
    counters.push_back(f.name);
  }
  // "<id>:<day>": the day bucket has no ':', the id may.
  auto split = [](const std::string& rest, std::string* id, std::string* day) {
    size_t c = rest.rfind(':');
    if (c == std::string::npos) {
      return false;
    }
    *id = rest.substr(0, c);
    *day = rest.substr(c + 1);
    return true;
  };
  int64_t moved = 0;
  std::string cursor = "0";
  do {
    auto r = cmd({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (!r) {
      return r.status();
    }
    const redisReply* rep = r.value().get();
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
      return fail(unavailable("redis SCAN returned an unexpected reply"), "SCAN");
    }
    cursor = replyStr(rep->element[0]);
    const redisReply* keys = rep->element[1];
    for (size_t i = 0; keys->type == REDIS_REPLY_ARRAY && i < keys->elements; ++i) {
      const std::string key = replyStr(keys->element[i]);
      const std::string name = key.substr(prefix_.size());
      auto rest = [&name](const char* p) {
        return name.rfind(p, 0) == 0 ? std::optional<std::string>(name.substr(strlen(p)))
                                     : std::nullopt;
      };
      std::string id;
      std::string day;
      Status st = Status::ok();
      auto run = [&](const Script& sc, const std::vector<std::string>& ks,
                     const std::vector<std::string>& args) {
        auto m = eval(sc, ks, args);
        if (m) {
          moved += replyInt(m.value().get());
        }
        return m.status();
      };
      if (auto r1 = rest("usage:key:")) {
        st = run(migrateTotal_, {key, k(lifeKeySuffix(UsageDim::kKey, *r1))}, {});
      } else if (auto r2 = rest("usage:acct:")) {
        st = run(migrateTotal_, {key, k(lifeKeySuffix(UsageDim::kAccount, *r2))}, {});
      } else if (auto r3 = rest("usage:keyday:"); r3 && split(*r3, &id, &day)) {
        st = run(migrateDay_,
                 {key, k(bucketKeySuffix(UsageDim::kKey, UsageBucket::kDay, day, id)),
                  k(topKeySuffix(UsageBucket::kDay, day))},
                 {dayMs, id});
      } else if (auto r4 = rest("usage:keymodels:"); r4 && split(*r4, &id, &day)) {
        st = run(migrateModels_,
                 {key, k(bucketKeySuffix(UsageDim::kKeyModel, UsageBucket::kDay, day, id)),
                  k(lifeKeySuffix(UsageDim::kKeyModel, id)), k("migr:usage-km")},
                 concat({dayMs, id, k(lifeKeySuffix(UsageDim::kModel, ""))}, counters));
      }  // usage:req:* markers and anything else stay
      if (!st) {
        return st;
      }
    }
  } while (cursor != "0");
  auto set = cmd({"SET", marker, "1"});
  if (!set) {
    return set.status();
  }
  if (moved > 0) {
    spdlog::info("redis store: moved {} usage totals of an older version into the usage buckets",
                 moved);
  }
  return Status::ok();
}

// ---- Keys ---------------------------------------------------------------------------------------

Status RedisKeys::create(const ApiKeyRecord& rec) {
  auto r = s_.eval(s_.keyCreate_, {s_.k("key:" + rec.id), s_.k("keys:byhash"), s_.k("keys:ids")},
                   concat({rec.id, rec.hash}, keyFields(rec)));
  if (!r) {
    return r.status();
  }
  std::string res = replyStr(r.value().get());
  if (res == "id") {
    return alreadyExists("key id " + rec.id + " already exists");
  }
  if (res == "hash") {
    return alreadyExists("a key with the same hash already exists");
  }
  return Status::ok();
}

StatusOr<std::optional<ApiKeyRecord>> RedisKeys::getById(const std::string& id) {
  auto r = s_.cmd({"HGETALL", s_.k("key:" + id)});
  if (!r) {
    return r.status();
  }
  Fields f = replyFields(r.value().get());
  if (f.empty()) {
    return std::optional<ApiKeyRecord>();
  }
  return std::optional<ApiKeyRecord>(keyFromFields(f));
}

StatusOr<std::optional<ApiKeyRecord>> RedisKeys::getByHash(const std::string& hash) {
  auto r = s_.eval(s_.keyByHash_, {s_.k("keys:byhash")}, {hash, s_.k("key:")});
  if (!r) {
    return r.status();
  }
  Fields f = replyFields(r.value().get());
  if (f.empty()) {
    return std::optional<ApiKeyRecord>();
  }
  return std::optional<ApiKeyRecord>(keyFromFields(f));
}

StatusOr<std::vector<ApiKeyRecord>> RedisKeys::list() {
  auto ids = s_.cmd({"SMEMBERS", s_.k("keys:ids")});
  if (!ids) {
    return ids.status();
  }
  std::vector<std::vector<std::string>> cmds;
  for (size_t i = 0; i < ids.value()->elements; ++i) {
    cmds.push_back({"HGETALL", s_.k("key:" + replyStr(ids.value()->element[i]))});
  }
  auto recs = s_.pipe(cmds);
  if (!recs) {
    return recs.status();
  }
  std::vector<ApiKeyRecord> out;
  for (const ReplyPtr& r : recs.value()) {
    Fields f = replyFields(r.get());
    if (!f.empty()) {  // removed between SMEMBERS and HGETALL
      out.push_back(keyFromFields(f));
    }
  }
  storage::sortByCreated(&out);
  return out;
}

Status RedisKeys::update(const ApiKeyRecord& rec) {
  auto r = s_.eval(s_.keyUpdate_, {s_.k("key:" + rec.id)}, concat({rec.hash}, keyFields(rec)));
  if (!r) {
    return r.status();
  }
  std::string res = replyStr(r.value().get());
  if (res == "missing") {
    return notFound("key " + rec.id + " not found");
  }
  if (res == "hash") {
    return invalidArgument("the hash of key " + rec.id + " may not change");
  }
  return Status::ok();
}

Status RedisKeys::remove(const std::string& id) {
  auto r = s_.eval(s_.keyRemove_, {s_.k("key:" + id), s_.k("keys:byhash"), s_.k("keys:ids")}, {id});
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get()) == 1 ? Status::ok() : notFound("key " + id + " not found");
}

// ---- Accounts -----------------------------------------------------------------------------------

Status RedisAccounts::create(const AccountRecord& rec) {
  auto r = s_.eval(s_.acctCreate_, {s_.k("acct:" + rec.id), s_.k("accts:ids")},
                   concat({rec.id}, acctFields(rec)));
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get()) == 1 ? Status::ok()
                                        : alreadyExists("account " + rec.id + " already exists");
}

StatusOr<std::optional<AccountRecord>> RedisAccounts::get(const std::string& id) {
  auto r = s_.cmd({"HGETALL", s_.k("acct:" + id)});
  if (!r) {
    return r.status();
  }
  Fields f = replyFields(r.value().get());
  if (f.empty()) {
    return std::optional<AccountRecord>();
  }
  return std::optional<AccountRecord>(acctFromFields(f));
}

StatusOr<std::vector<AccountRecord>> RedisAccounts::list() {
  auto ids = s_.cmd({"SMEMBERS", s_.k("accts:ids")});
  if (!ids) {
    return ids.status();
  }
  std::vector<std::vector<std::string>> cmds;
  for (size_t i = 0; i < ids.value()->elements; ++i) {
    cmds.push_back({"HGETALL", s_.k("acct:" + replyStr(ids.value()->element[i]))});
  }
  auto recs = s_.pipe(cmds);
  if (!recs) {
    return recs.status();
  }
  std::vector<AccountRecord> out;
  for (const ReplyPtr& r : recs.value()) {
    Fields f = replyFields(r.get());
    if (!f.empty()) {
      out.push_back(acctFromFields(f));
    }
  }
  storage::sortByCreated(&out);
  return out;
}

Status RedisAccounts::update(const AccountRecord& rec) {
  auto r = s_.eval(s_.replace_, {s_.k("acct:" + rec.id)}, acctFields(rec));
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get()) == 1 ? Status::ok()
                                        : notFound("account " + rec.id + " not found");
}

Status RedisAccounts::remove(const std::string& id) {
  auto r = s_.eval(s_.acctRemove_, {s_.k("acct:" + id), s_.k("accts:ids")}, {id});
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get()) == 1 ? Status::ok() : notFound("account " + id + " not found");
}

Status RedisAccounts::touchLastUsed(const std::string& id, int64_t unixMs) {
  auto r = s_.eval(s_.touch_, {s_.k("acct:" + id)}, {"lastUsedAtMs", std::to_string(unixMs)});
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get()) == 1 ? Status::ok() : notFound("account " + id + " not found");
}

// ---- Usage --------------------------------------------------------------------------------------

StatusOr<bool> RedisUsage::record(const UsageEvent& ev) { return book(ev, nullptr); }

StatusOr<bool> RedisUsage::book(const UsageEvent& raw, const SettleRequest* settle) {
  const UsageEvent ev = storage::withTimeBuckets(raw);
  // Which hashes this event books, plain (field "<counter>") and per model, and the top-keys
  // zsets, each with its ttl.
  std::vector<std::string> plain;
  std::vector<std::string> plainTtl;
  std::vector<std::string> perModel;
  std::vector<std::string> perModelTtl;
  std::vector<std::string> top;
  std::vector<std::string> topTtl;
  bool byKey = !ev.keyId.empty();
  bool byAccount = !ev.accountId.empty();
  const std::pair<UsageBucket, const std::string*> kinds[] = {
      {UsageBucket::kHour, &ev.hour}, {UsageBucket::kDay, &ev.day}, {UsageBucket::kMonth, &ev.month}};
  // A retention <= 0 keeps the buckets forever (like the embedded backend).
  auto ttl = [](int64_t ms) { return ms > 0 ? std::to_string(ms) : std::string("0"); };
  const std::string ttls[] = {ttl(hourlyMs_.load()), ttl(dailyMs_.load()), ttl(monthlyMs_.load())};
  auto add = [&](UsageDim d, const std::string& id, std::vector<std::string>* dst,
                 std::vector<std::string>* dstTtls) {
    for (size_t i = 0; i < 3; ++i) {
      dst->push_back(s_.k(bucketKeySuffix(d, kinds[i].first, *kinds[i].second, id)));
      dstTtls->push_back(ttls[i]);
    }
    dst->push_back(s_.k(lifeKeySuffix(d, id)));
    dstTtls->push_back("0");
  };
  int64_t cap = 0;
  if (byKey) {
    add(UsageDim::kKey, ev.keyId, &plain, &plainTtl);
    add(UsageDim::kKeyModel, ev.keyId, &perModel, &perModelTtl);
    cap = std::max<int64_t>(0, recentPerKey_.load());
    for (size_t i = 0; i < 3; ++i) {
      top.push_back(s_.k(topKeySuffix(kinds[i].first, *kinds[i].second)));
      topTtl.push_back(ttls[i]);
    }
  }
  if (byAccount) {
    add(UsageDim::kAccount, ev.accountId, &plain, &plainTtl);
  }
  add(UsageDim::kModel, ev.model, &plain, &plainTtl);

  std::vector<std::string> keys;
  keys.reserve(6 + plain.size() + perModel.size() + top.size());
  keys.push_back(s_.k("usage:req:" + ev.requestId));
  keys.insert(keys.end(), plain.begin(), plain.end());
  keys.insert(keys.end(), perModel.begin(), perModel.end());
  keys.insert(keys.end(), top.begin(), top.end());
  if (cap > 0) {
    keys.push_back(s_.k("u:recent:" + ev.keyId));
  }
  if (settle != nullptr) {
    for (const std::string& k : reservationKeys(s_, settle->keyId)) {
      keys.push_back(k);
    }
    keys.push_back(s_.k("adm:win:" + settle->keyId));
    keys.push_back(s_.k(weekKeySuffix(settle->week, settle->keyId)));
  }
  std::vector<std::string> args = {std::to_string(storage::kUsageIdRetentionMs),
                                   ev.model,
                                   ev.requestId.empty() ? "0" : "1",
                                   std::to_string(plain.size()),
                                   std::to_string(perModel.size()),
                                   std::to_string(top.size()),
                                   std::to_string(cap),
                                   cap > 0 ? storage::encodeUsageEvent(ev) : std::string(),
                                   ev.keyId,
                                   std::to_string(ev.counts.billedMicroUsd),
                                   settle != nullptr ? "1" : "0",
                                   settle != nullptr ? settle->requestId : std::string(),
                                   std::to_string(s_.now()),
                                   settle != nullptr && settle->weekly ? "1" : "0",
                                   std::to_string(settle != nullptr ? settle->weekTtlMs : 0),
                                   std::to_string(ev.counts.allTokens())};
  args.insert(args.end(), plainTtl.begin(), plainTtl.end());
  args.insert(args.end(), perModelTtl.begin(), perModelTtl.end());
  args.insert(args.end(), topTtl.begin(), topTtl.end());
  for (const auto& f : storage::kTokenFields) {
    int64_t v = ev.counts.*f.member;
    // Zero counters are not sent (a missing field reads as 0); requests always is, so that a
    // booked model shows up in the per-model hashes even with no tokens.
    if (v != 0 || f.member == &TokenCounts::requests) {
      args.push_back(f.name);
      args.push_back(std::to_string(v));
    }
  }
  auto r = s_.eval(s_.usageRecord_, keys, args);
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get()) == 1;
}

StatusOr<TokenCounts> RedisUsage::counts(const std::string& key) {
  auto r = s_.cmd({"HGETALL", key});
  if (!r) {
    return r.status();
  }
  return countsFromFields(replyFields(r.value().get()));
}

void RedisUsage::setRetention(const UsageRetention& r) {
  hourlyMs_ = r.hourlyMs;
  dailyMs_ = r.dailyMs;
  monthlyMs_ = r.monthlyMs;
  recentPerKey_ = r.recentPerKey;
}

StatusOr<std::vector<UsageEvent>> RedisUsage::recent(const std::string& keyId, size_t limit) {
  std::vector<UsageEvent> out;
  if (limit == 0) {
    return out;
  }
  // LRANGE takes a signed 64-bit stop: clamp (the list is capped far below this anyway).
  size_t stop = std::min<size_t>(limit, size_t{1} << 40) - 1;
  auto r = s_.cmd({"LRANGE", s_.k("u:recent:" + keyId), "0", std::to_string(stop)});
  if (!r) {
    return r.status();
  }
  const redisReply* rep = r.value().get();
  if (rep->type == REDIS_REPLY_ARRAY) {
    out.reserve(rep->elements);
    for (size_t i = 0; i < rep->elements; ++i) {
      UsageEvent ev;
      if (storage::decodeUsageEvent(replyStr(rep->element[i]), &ev)) {
        out.push_back(std::move(ev));
      }
    }
  }
  return out;
}

StatusOr<std::vector<UsagePoint>> RedisUsage::series(UsageDim dim, const std::string& id,
                                                     UsageBucket bucket,
                                                     const std::vector<std::string>& buckets) {
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(buckets.size());
  for (const std::string& b : buckets) {
    cmds.push_back({"HGETALL", s_.k(bucketKeySuffix(dim, bucket, b, id))});
  }
  auto r = s_.pipe(cmds);  // one round trip for every bucket
  if (!r) {
    return r.status();
  }
  std::vector<UsagePoint> out;
  out.reserve(buckets.size());
  for (size_t i = 0; i < buckets.size(); ++i) {
    Fields fields = replyFields(r.value()[i].get());
    if (dim != UsageDim::kKeyModel) {
      out.push_back(UsagePoint{buckets[i], std::string(), countsFromFields(fields)});
      continue;
    }
    for (auto& [model, c] : modelCountsFromFields(fields)) {
      out.push_back(UsagePoint{buckets[i], model, c});
    }
  }
  return out;
}

StatusOr<TokenCounts> RedisUsage::lifetime(UsageDim dim, const std::string& id) {
  if (dim != UsageDim::kKeyModel) {
    return counts(s_.k(lifeKeySuffix(dim, id)));
  }
  auto r = s_.cmd({"HGETALL", s_.k(lifeKeySuffix(dim, id))});
  if (!r) {
    return r.status();
  }
  TokenCounts sum;
  for (const auto& [model, c] : modelCountsFromFields(replyFields(r.value().get()))) {
    sum.add(c);
  }
  return sum;
}

StatusOr<std::vector<UsageStore::KeyCost>> RedisUsage::topKeys(
    UsageBucket bucket, const std::vector<std::string>& buckets, size_t limit) {
  std::vector<KeyCost> out;
  if (buckets.empty() || limit == 0) {
    return out;
  }
  std::vector<std::string> keys = {s_.k("u:top:scratch")};
  for (const std::string& b : buckets) {
    keys.push_back(s_.k(topKeySuffix(bucket, b)));
  }
  // Lua numbers are doubles: a limit past 2^31 means "all" anyway.
  auto r = s_.eval(s_.topKeys_, keys, {std::to_string(std::min<size_t>(limit, 1u << 31))});
  if (!r) {
    return r.status();
  }
  const redisReply* rep = r.value().get();
  if (rep->type == REDIS_REPLY_ARRAY) {
    out.reserve(rep->elements / 2);
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
      // Scores are doubles: exact for integers below 2^53 micro-USD ($9 billion).
      double score = std::strtod(replyStr(rep->element[i + 1]).c_str(), nullptr);
      out.push_back(KeyCost{replyStr(rep->element[i]), std::llround(score)});
    }
  }
  storage::sortTopKeys(&out, limit);
  return out;
}

// ---- Limits -------------------------------------------------------------------------------------

StatusOr<LeaseResult> RedisLimits::acquireLease(const std::string& scope, const std::string& holder,
                                                int64_t limit, int64_t ttlMs) {
  auto r =
      s_.eval(s_.leaseAcquire_, {s_.k("lease:" + scope)},
              {std::to_string(s_.now()), holder, std::to_string(limit), std::to_string(ttlMs)});
  if (!r) {
    return r.status();
  }
  const redisReply* a = r.value().get();
  if (a->type != REDIS_REPLY_ARRAY || a->elements != 2) {
    return s_.fail(unavailable("redis script leaseAcquire returned an unexpected reply"),
                   "leaseAcquire");
  }
  LeaseResult lr;
  lr.acquired = replyInt(a->element[0]) == 1;
  lr.count = replyInt(a->element[1]);
  return lr;
}

StatusOr<bool> RedisLimits::renewLease(const std::string& scope, const std::string& holder,
                                       int64_t ttlMs) {
  auto r = s_.eval(s_.leaseRenew_, {s_.k("lease:" + scope)},
                   {std::to_string(s_.now()), holder, std::to_string(ttlMs)});
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get()) == 1;
}

Status RedisLimits::releaseLease(const std::string& scope, const std::string& holder) {
  auto r = s_.cmd({"ZREM", s_.k("lease:" + scope), holder});
  return r ? Status::ok() : r.status();
}

StatusOr<int64_t> RedisLimits::leaseCount(const std::string& scope) {
  auto r = s_.cmd({"ZCOUNT", s_.k("lease:" + scope), "(" + std::to_string(s_.now()), "+inf"});
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get());
}

// ---- Admission ----------------------------------------------------------------------------------

StatusOr<AdmitResult> RedisAdmission::admit(const AdmitRequest& req) {
  if (req.ttlMs <= 0) {
    return invalidArgument("admission ttl must be positive");
  }
  const AdmissionLimits& l = req.limits;
  if (req.weekly && req.weekTtlMs <= 0) {
    return invalidArgument("admission weekTtlMs must be positive for a weekly request");
  }
  std::vector<std::string> keys = reservationKeys(s_, req.keyId);
  keys.push_back(s_.k("adm:win:" + req.keyId));
  keys.push_back(s_.k(bucketKeySuffix(UsageDim::kKey, UsageBucket::kDay, req.day, req.keyId)));
  keys.push_back(s_.k(lifeKeySuffix(UsageDim::kKey, req.keyId)));
  keys.push_back(s_.k(weekKeySuffix(req.week, req.keyId)));
  auto r = s_.eval(
      s_.admit_, keys,
      {std::to_string(s_.now()), req.requestId, std::to_string(req.ttlMs),
       std::to_string(std::max<int64_t>(0, req.estTokens)),
       std::to_string(std::max<int64_t>(0, req.estBilledMicroUsd)), std::to_string(l.concurrency),
       std::to_string(l.windowMs), std::to_string(l.windowRequests),
       std::to_string(l.windowTokens), std::to_string(l.windowCostMicroUsd),
       std::to_string(l.dailyCostMicroUsd), std::to_string(l.totalCostMicroUsd),
       std::to_string(req.weekly ? l.weeklyCostMicroUsd : 0)});
  if (!r) {
    return r.status();
  }
  const redisReply* a = r.value().get();
  if (a->type != REDIS_REPLY_ARRAY || a->elements != 5) {
    return s_.fail(unavailable("redis script admit returned an unexpected reply"), "admit");
  }
  int64_t v = replyInt(a->element[0]);
  if (v < 0 || v > static_cast<int64_t>(AdmitVerdict::kWeeklyCost)) {
    return s_.fail(unavailable("redis script admit returned an unknown verdict"), "admit");
  }
  AdmitResult res;
  res.verdict = static_cast<AdmitVerdict>(v);
  res.current = replyInt(a->element[1]);
  res.limit = replyInt(a->element[2]);
  res.windowEndMs = replyInt(a->element[3]);
  res.inFlight = replyInt(a->element[4]);
  return res;
}

StatusOr<bool> RedisAdmission::renew(const std::string& keyId, const std::string& requestId,
                                     int64_t ttlMs) {
  if (ttlMs <= 0) {
    return invalidArgument("admission ttl must be positive");
  }
  auto r = s_.eval(s_.admitRenew_, reservationKeys(s_, keyId),
                   {std::to_string(s_.now()), requestId, std::to_string(ttlMs)});
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get()) == 1;
}

StatusOr<bool> RedisAdmission::settle(const SettleRequest& req) {
  if (req.weekly && req.weekTtlMs <= 0) {
    return invalidArgument("settle weekTtlMs must be positive for a weekly request");
  }
  if (req.usage == nullptr) {
    Status st = release(req.keyId, req.requestId);
    if (!st) {
      return st;
    }
    return false;
  }
  return s_.usageImpl().book(*req.usage, &req);
}

Status RedisAdmission::release(const std::string& keyId, const std::string& requestId) {
  auto r = s_.eval(s_.admitRelease_, reservationKeys(s_, keyId), {requestId});
  return r ? Status::ok() : r.status();
}

StatusOr<AdmissionState> RedisAdmission::state(const std::string& keyId, const std::string& week) {
  std::vector<std::string> keys = reservationKeys(s_, keyId);
  keys.push_back(s_.k("adm:win:" + keyId));
  keys.push_back(s_.k(weekKeySuffix(week, keyId)));
  auto r = s_.eval(s_.admitState_, keys,
                   {std::to_string(s_.now()), week.empty() ? "0" : "1"});
  if (!r) {
    return r.status();
  }
  const redisReply* a = r.value().get();
  if (a->type != REDIS_REPLY_ARRAY || a->elements != 8) {
    return s_.fail(unavailable("redis script admitState returned an unexpected reply"),
                   "admitState");
  }
  AdmissionState st;
  st.windowEndMs = replyInt(a->element[0]);
  st.windowRequests = replyInt(a->element[1]);
  st.windowTokens = replyInt(a->element[2]);
  st.windowCostMicroUsd = replyInt(a->element[3]);
  st.weeklyCostMicroUsd = replyInt(a->element[4]);
  st.inFlight = replyInt(a->element[5]);
  st.reservedTokens = replyInt(a->element[6]);
  st.reservedMicroUsd = replyInt(a->element[7]);
  return st;
}

// ---- Scheduler state ----------------------------------------------------------------------------

std::string encodeCooldown(const CooldownRecord& r) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&w](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  };
  auto num = [&w](const char* k, int64_t v) {
    w.Key(k);
    w.Int64(v);
  };
  w.StartObject();
  str("accountId", r.accountId);
  str("scope", r.scope);
  num("untilMs", r.untilMs);
  num("markedAtMs", r.markedAtMs);
  str("errorClass", r.errorClass);
  str("reason", r.reason);
  num("upstreamStatus", r.upstreamStatus);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::optional<CooldownRecord> decodeCooldown(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject()) {
    return std::nullopt;
  }
  auto str = [&d](const char* k) {
    auto it = d.FindMember(k);
    return it != d.MemberEnd() && it->value.IsString()
               ? std::string(it->value.GetString(), it->value.GetStringLength())
               : std::string();
  };
  auto num = [&d](const char* k) {
    auto it = d.FindMember(k);
    return it != d.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : int64_t{0};
  };
  CooldownRecord r;
  r.accountId = str("accountId");
  r.scope = str("scope");
  r.untilMs = num("untilMs");
  r.markedAtMs = num("markedAtMs");
  r.errorClass = str("errorClass");
  r.reason = str("reason");
  r.upstreamStatus = num("upstreamStatus");
  return r;
}

Status RedisSched::setCooldown(const CooldownRecord& rec) {
  if (rec.accountId.find('|') != std::string::npos) {
    return invalidArgument("an account id may not contain '|'");
  }
  std::string f = rec.accountId + "|" + rec.scope;
  auto r = rec.untilMs <= s_.now() ? s_.cmd({"HDEL", s_.k("cooldowns"), f})
                                   : s_.cmd({"HSET", s_.k("cooldowns"), f, encodeCooldown(rec)});
  return r ? Status::ok() : r.status();
}

Status RedisSched::clearCooldown(const std::string& accountId,
                                 const std::optional<std::string>& scope) {
  if (scope) {
    auto r = s_.cmd({"HDEL", s_.k("cooldowns"), accountId + "|" + *scope});
    return r ? Status::ok() : r.status();
  }
  auto r = s_.eval(s_.cooldownClearAll_, {s_.k("cooldowns")}, {accountId + "|"});
  return r ? Status::ok() : r.status();
}

StatusOr<std::vector<CooldownRecord>> RedisSched::listCooldowns() {
  auto r = s_.cmd({"HGETALL", s_.k("cooldowns")});
  if (!r) {
    return r.status();
  }
  int64_t t = s_.now();
  std::vector<CooldownRecord> out;
  std::vector<std::string> expired;  // field/value pairs
  for (const auto& [f, v] : replyFields(r.value().get())) {
    std::optional<CooldownRecord> rec = decodeCooldown(v);
    if (!rec || rec->untilMs <= t) {
      expired.push_back(f);
      expired.push_back(v);
      continue;
    }
    out.push_back(std::move(*rec));
  }
  if (!expired.empty()) {
    // A second round trip only when something expired; a failure here changes nothing read.
    auto p = s_.eval(s_.cooldownPrune_, {s_.k("cooldowns")}, expired);
    (void)p;
  }
  std::sort(out.begin(), out.end(), [](const CooldownRecord& a, const CooldownRecord& b) {
    return a.accountId != b.accountId ? a.accountId < b.accountId : a.scope < b.scope;
  });
  return out;
}

StatusOr<std::optional<StickyRecord>> RedisSched::getSticky(const std::string& sessionHash) {
  auto r = s_.cmd({"GET", s_.k("sticky:" + sessionHash)});
  if (!r) {
    return r.status();
  }
  if (r.value()->type == REDIS_REPLY_NIL) {
    return std::optional<StickyRecord>();
  }
  std::string v = replyStr(r.value().get());
  size_t colon = v.find(':');
  if (colon == std::string::npos) {
    return std::optional<StickyRecord>();
  }
  StickyRecord rec{v.substr(colon + 1), toInt(v.substr(0, colon))};
  if (rec.expiresAtMs <= s_.now()) {
    return std::optional<StickyRecord>();
  }
  return std::optional<StickyRecord>(std::move(rec));
}

Status RedisSched::setSticky(const std::string& sessionHash, const std::string& accountId,
                             int64_t ttlMs) {
  if (ttlMs <= 0) {
    return invalidArgument("sticky ttl must be positive");
  }
  int64_t t = s_.now();
  auto r = s_.eval(s_.stickySet_, {s_.k("sticky:" + sessionHash)},
                   {std::to_string(t), std::to_string(ttlMs), accountId, sessionHash,
                    s_.k("sticky_acct:"), std::to_string(t + ttlMs)});
  return r ? Status::ok() : r.status();
}

Status RedisSched::deleteSticky(const std::string& sessionHash) {
  auto r = s_.eval(s_.stickyDelete_, {s_.k("sticky:" + sessionHash)},
                   {sessionHash, s_.k("sticky_acct:")});
  return r ? Status::ok() : r.status();
}

StatusOr<int64_t> RedisSched::deleteStickyForAccount(const std::string& accountId) {
  auto r = s_.eval(s_.stickyDeleteForAccount_, {s_.k("sticky_acct:" + accountId)},
                   {std::to_string(s_.now()), accountId, s_.k("sticky:")});
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get());
}

StatusOr<bool> RedisSched::tryLock(const std::string& name, const std::string& token,
                                   int64_t ttlMs) {
  if (ttlMs <= 0) {
    return invalidArgument("lock ttl must be positive");
  }
  int64_t t = s_.now();
  auto r = s_.eval(s_.lockTry_, {s_.k("lock:" + name)},
                   {std::to_string(t), std::to_string(ttlMs), token, std::to_string(t + ttlMs)});
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get()) == 1;
}

StatusOr<bool> RedisSched::unlock(const std::string& name, const std::string& token) {
  auto r = s_.eval(s_.unlock_, {s_.k("lock:" + name)}, {std::to_string(s_.now()), token});
  if (!r) {
    return r.status();
  }
  return replyInt(r.value().get()) == 1;
}

// ---- KV -----------------------------------------------------------------------------------------

StatusOr<std::optional<std::string>> RedisKv::get(const std::string& key) {
  auto r = s_.cmd({"GET", s_.k(ns_ + key)});
  if (!r) {
    return r.status();
  }
  if (r.value()->type == REDIS_REPLY_NIL) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(replyStr(r.value().get()));
}

Status RedisKv::set(const std::string& key, const std::string& value, int64_t ttlMs) {
  std::vector<std::string> argv = {"SET", s_.k(ns_ + key), value};
  if (ttlMs > 0) {
    argv.push_back("PX");
    argv.push_back(std::to_string(ttlMs));
  }
  auto r = s_.cmd(argv);
  return r ? Status::ok() : r.status();
}

Status RedisKv::del(const std::string& key) {
  auto r = s_.cmd({"DEL", s_.k(ns_ + key)});
  return r ? Status::ok() : r.status();
}

}  // namespace

StatusOr<StorePtr> openRedisStore(const RedisOptions& opts, const Clock& clock) {
  auto ep = storage::parseRedisUrl(opts.url, opts.password, opts.db);
  if (!ep) {
    return ep.status();
  }
  ep->poolSize = opts.poolSize;
  ep->connectTimeoutMs = opts.connectTimeoutMs;
  ep->commandTimeoutMs = opts.commandTimeoutMs;
  auto store = std::make_unique<RedisStore>(std::move(ep.value()), opts.keyPrefix, clock);
  // Fail at start-up on a wrong address or password, rather than on the first request.
  Status s = store->ping();
  if (!s) {
    return s;
  }
  s = store->migrateLegacyUsage();
  if (!s) {
    return Status(s.code(), "redis store: migrating the usage totals of an older version: " +
                                s.message());
  }
  return StorePtr(std::move(store));
}

}  // namespace rg
