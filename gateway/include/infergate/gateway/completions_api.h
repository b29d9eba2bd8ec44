// POST /v1/chat/completions and /v1/completions, streaming (SSE) or not: authenticate, validate,
// route to a model (tiers, context fit, load), tokenize with that model's tokenizer, admit the
// prompt plus max_tokens against the tenant's limits, run on the model's engine, then make the
// usage record durable in the journal before the response's final bytes, and settle the
// reservation with what was used. A client that disconnects cancels its sequence at the next
// engine step and is metered with what was processed (status "cancelled"). Also the serving
// metrics operators know from vLLM. Thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <memory>

#include "infergate/billing/usage_journal.h"
#include "infergate/gateway/admission.h"
#include "infergate/gateway/inference_api.h"
#include "infergate/gateway/model_router.h"
#include "infergate/gateway/models.h"
#include "infergate/gateway/router.h"
#include "infergate/infra/config.h"
#include "infergate/infra/metrics.h"

namespace infergate::gateway {

class CompletionsApi {
 public:
  CompletionsApi(InferenceApi& inference, Admission& admission, const ModelRegistry& models,
                 billing::UsageJournal& journal, const infra::AdmissionConfig& admission_cfg,
                 infra::MetricsRegistry& metrics);
  ~CompletionsApi();
  void add_routes(Router& router);
  // Refreshes the per-model gauges (running, waiting, KV use); serve calls it periodically.
  void update_gauges();
  // At shutdown, once the event loops have stopped and every engine has finished its sequences
  // (ModelRegistry::stop_engines): meters the streaming requests whose handlers never took their
  // last event (their connection was still open when the loops stopped, e.g. the engine was in a
  // long step), as cancelled with the tokens the engine processed, and queues their records in
  // the journal (flush it after). A non-streaming request's record is written by the engine
  // thread already. Returns how many it metered.
  std::size_t meter_abandoned_streams();

  struct Metrics;
  struct StreamMetering;
  struct OpenStreams;

 private:
  boost::asio::awaitable<Response> handle(Request& req, RequestContext& ctx, bool chat);

  InferenceApi& inference_;
  Admission& admission_;
  const ModelRegistry& models_;
  ModelRouter router_;
  billing::UsageJournal& journal_;
  infra::AdmissionConfig admission_cfg_;
  std::unique_ptr<Metrics> metrics_;
  // Shared with the requests' guards, which may outlive this object (a coroutine frame is
  // destroyed with its event loop).
  std::shared_ptr<OpenStreams> open_streams_;
};

}  // namespace infergate::gateway
