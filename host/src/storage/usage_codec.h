#pragma once
// JSON encoding of a UsageEvent shared by both backends (not part of the Store contract): the
// embedded journal's "usage" line and recent-records lines, and the Redis recent-records list,
// use the same field names, so a record reads back the same from either backend.

#include <cstdint>
#include <string>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "storage/store.h"

namespace rg::storage {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Writes the event's fields as members of the object `w` is in. The names of the fields that
// existed before issue 4 (rid, key, acct, model, day, ms, c) are those of the old journal lines.
void writeUsageEventFields(JsonWriter& w, const UsageEvent& ev);
// Reads them back; absent fields keep their defaults (older lines).
UsageEvent readUsageEventFields(const rapidjson::Value& o);

// The event as one JSON object, and back (false on unparseable text).
std::string encodeUsageEvent(const UsageEvent& ev);
bool decodeUsageEvent(const std::string& text, UsageEvent* out);

// The event with its missing time buckets (hour, day, month) derived from unixMs in UTC: record()
// books every event into the time buckets, and callers that predate them (or old journal lines)
// give only day / nothing.
UsageEvent withTimeBuckets(UsageEvent ev);

}  // namespace rg::storage
