#include "auth/key_input.h"

#include "accounting/pricing.h"

namespace rg {

namespace {

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

std::string quotedText(std::string_view t) {
  return "\"" + std::string(t.substr(0, 40)) + (t.size() > 40 ? "...\"" : "\"");
}

// 1234500 -> "1.2345" for a value with 6 implied decimals.
std::string formatSixDecimals(int64_t v) {
  std::string sign = v < 0 ? "-" : "";
  uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string out = sign + std::to_string(u / 1'000'000);
  uint64_t frac = u % 1'000'000;
  if (frac != 0) {
    std::string f = std::to_string(frac);
    f.insert(0, 6 - f.size(), '0');
    while (f.back() == '0') {
      f.pop_back();
    }
    out += "." + f;
  }
  return out;
}

}  // namespace

StatusOr<int64_t> parseUsdMicros(std::string_view t) {
  const std::string shown = quotedText(t);
  const Status bad = invalidArgument("expected a USD amount such as 10 or 0.25, got " + shown);
  if (!t.empty() && t[0] == '-') {
    return invalidArgument("must not be negative, got " + shown);
  }
  // Digits of the mantissa (without the dot), how many of them are fractional, the exponent.
  std::string digits;
  int64_t fracLen = 0;
  bool dot = false;
  size_t i = 0;
  for (; i < t.size(); ++i) {
    char c = t[i];
    if (isDigit(c)) {
      digits.push_back(c);
      fracLen += dot ? 1 : 0;
    } else if (c == '.' && !dot && i + 1 < t.size() && isDigit(t[i + 1])) {
      dot = true;
    } else {
      break;
    }
  }
  if (digits.empty()) {
    return bad;
  }
  int64_t exp = 0;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
      neg = t[i] == '-';
      ++i;
    }
    size_t start = i;
    for (; i < t.size() && isDigit(t[i]); ++i) {
      exp = exp * 10 + (t[i] - '0');
      if (exp > 999999) {
        // A clamped exponent would let a huge mantissa shift turn 1e1000000 into a small sum.
        return invalidArgument("exponent out of range in " + shown);
      }
    }
    if (i == start) {
      return bad;
    }
    exp = neg ? -exp : exp;
  }
  if (i != t.size()) {
    return bad;
  }
  size_t nz = digits.find_first_not_of('0');
  digits = nz == std::string::npos ? std::string() : digits.substr(nz);
  if (digits.empty()) {
    return int64_t{0};
  }
  // micro = digits x 10^(exp - fracLen + 6): dropped digits must be zeros, added ones are.
  int64_t shift = exp - fracLen + 6;
  const Status tooBig = invalidArgument("at most 1000000000 USD, got " + shown);
  if (shift < 0) {
    size_t drop = static_cast<size_t>(-shift);
    size_t keep = drop >= digits.size() ? 0 : digits.size() - drop;
    if (digits.find_first_not_of('0', keep) != std::string::npos) {
      return invalidArgument("at most 6 decimal places (micro-dollars), got " + shown);
    }
    digits.resize(keep);
  } else {
    if (shift > 20) {
      return tooBig;
    }
    digits.append(static_cast<size_t>(shift), '0');
  }
  if (digits.size() > 16) {
    return tooBig;
  }
  int64_t v = 0;
  for (char c : digits) {
    v = v * 10 + (c - '0');
  }
  if (v > kMaxCostMicroUsd) {
    return tooBig;
  }
  return v;
}

std::string formatUsdMicros(int64_t microUsd) {
  return formatSixDecimals(microUsd);
}

std::string formatRatePpm(int64_t ppm) {
  return formatSixDecimals(ppm);
}

StatusOr<KeyPatch> keyPatch(const KeyInput& in, int64_t nowMs, InputSpelling spelling) {
  const bool cli = spelling == InputSpelling::kCliFlags;
  auto nm = [cli](const char* flag, const char* json) { return std::string(cli ? flag : json); };
  if (in.allowModels && in.denyModels) {
    return invalidArgument(cli ? "use either --deny-models or --allow-models, not both"
                               : "give either allow_models or deny_models, not both");
  }
  if (in.expiresAtMs && *in.expiresAtMs != 0 && *in.expiresAtMs <= nowMs) {
    return invalidArgument(nm("--expires-at", "expires_at") + " is in the past");
  }
  KeyPatch p;
  p.permissions = in.permissions;
  p.expiresAtMs = in.expiresAtMs;
  p.concurrencyLimit = in.concurrencyLimit;
  p.rateWindowMinutes = in.rateWindowMinutes;
  p.rateRequests = in.rateRequests;
  p.rateTokens = in.rateTokens;
  p.weeklyResetDay = in.weeklyResetDay;
  p.weeklyResetHour = in.weeklyResetHour;
  p.bindings = in.bindings;
  struct {
    const std::optional<std::string>& text;
    std::optional<int64_t>* dest;
    std::string name;
  } money[] = {
      {in.rateCostUsd, &p.rateCostMicroUsd, nm("--rate-cost", "rate_cost_usd")},
      {in.dailyCostUsd, &p.dailyCostMicroUsd, nm("--daily-cost", "daily_cost_usd")},
      {in.totalCostUsd, &p.totalCostMicroUsd, nm("--total-cost", "total_cost_usd")},
      {in.weeklyCostUsd, &p.weeklyCostMicroUsd, nm("--weekly-cost", "weekly_cost_usd")},
  };
  for (auto& m : money) {
    if (m.text) {
      auto v = parseUsdMicros(*m.text);
      if (!v) {
        return invalidArgument(m.name + ": " + v.status().message());
      }
      *m.dest = *v;
    }
  }
  if (in.rate) {
    auto r = Rate::parse(*in.rate);
    if (!r || r->ppm <= 0) {
      return invalidArgument(nm("--rate", "rate") +
                             ": expected a decimal multiplier above 0 and at most 1000 with at "
                             "most 6 decimal places (1 = list price), got " +
                             quotedText(*in.rate));
    }
    p.ratePpm = r->ppm;
  }
  if (in.activationHours && in.activationDays) {
    return invalidArgument(cli ? "use either --activation-hours or --activation-days, not both"
                               : "give either activation_hours or activation_days, not both");
  }
  struct {
    const std::optional<int64_t>& n;
    int64_t unitMs;
    std::string name;
  } activation[] = {
      {in.activationHours, 3'600'000, nm("--activation-hours", "activation_hours")},
      {in.activationDays, 86'400'000, nm("--activation-days", "activation_days")},
  };
  for (auto& a : activation) {
    if (a.n) {
      if (*a.n < 0 || *a.n > kMaxActivationMs / a.unitMs) {
        return invalidArgument(a.name + ": expected 0 (off) up to " +
                               std::to_string(kMaxActivationMs / a.unitMs) + ", got " +
                               std::to_string(*a.n));
      }
      p.activationMs = *a.n * a.unitMs;
    }
  }
  if (in.allowModels) {
    p.modelMode = in.allowModels->empty() ? ModelFilterMode::kNone : ModelFilterMode::kAllow;
    p.models = *in.allowModels;
  } else if (in.denyModels) {
    p.modelMode = in.denyModels->empty() ? ModelFilterMode::kNone : ModelFilterMode::kDeny;
    p.models = *in.denyModels;
  }
  return p;
}

StatusOr<NewKeyOptions> newKeyOptions(const KeyInput& in, int64_t nowMs, InputSpelling spelling) {
  const bool cli = spelling == InputSpelling::kCliFlags;
  if (in.allowModels && in.denyModels) {
    return invalidArgument(cli ? "use either --deny-models or --allow-models, not both"
                               : "give either allow_models or deny_models, not both");
  }
  if (!in.name) {
    return invalidArgument(cli ? "keys create needs --name NAME" : "name: required");
  }
  auto p = keyPatch(in, nowMs, spelling);
  if (!p) {
    return p.status();
  }
  NewKeyOptions o;
  o.name = *in.name;
  o.permissions = p->permissions.value_or(std::vector<std::string>());
  o.expiresAtMs = p->expiresAtMs.value_or(0);
  o.concurrencyLimit = p->concurrencyLimit.value_or(0);
  o.rateWindowMinutes = p->rateWindowMinutes.value_or(0);
  o.rateRequests = p->rateRequests.value_or(0);
  o.rateTokens = p->rateTokens.value_or(0);
  o.modelMode = p->modelMode.value_or(ModelFilterMode::kNone);
  o.models = p->models.value_or(std::vector<std::string>());
  o.bindings = p->bindings.value_or(std::map<std::string, std::string>());
  o.rateCostMicroUsd = p->rateCostMicroUsd.value_or(0);
  o.dailyCostMicroUsd = p->dailyCostMicroUsd.value_or(0);
  o.totalCostMicroUsd = p->totalCostMicroUsd.value_or(0);
  o.weeklyCostMicroUsd = p->weeklyCostMicroUsd.value_or(0);
  o.weeklyResetDay = p->weeklyResetDay.value_or(1);
  o.weeklyResetHour = p->weeklyResetHour.value_or(0);
  o.ratePpm = p->ratePpm.value_or(kRatePpmOne);
  o.activationMs = p->activationMs.value_or(0);
  return o;
}

}  // namespace rg
