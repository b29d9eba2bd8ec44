// A billing request refused for a reason the caller can fix or must know: bad input (names the
// offending parameter), an unknown tenant/invoice, or a state conflict (e.g. a finalized
// invoice). The gateway maps the kinds to 400, 404 and 409.
#pragma once

#include <stdexcept>
#include <string>

namespace infergate::billing {

class BillingError : public std::runtime_error {
 public:
  enum class Kind { invalid, not_found, conflict };
  BillingError(Kind kind, std::string param, const std::string& message)
      : std::runtime_error(message), kind_(kind), param_(std::move(param)) {}
  Kind kind() const { return kind_; }
  const std::string& param() const { return param_; }

 private:
  Kind kind_;
  std::string param_;
};

}  // namespace infergate::billing
