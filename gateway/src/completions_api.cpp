#include "infergate/gateway/completions_api.h"

#include <boost/asio/async_result.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>
#include <chrono>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <atomic>
#include <optional>

#include "generation_inbox.h"
#include "infergate/gateway/openai_request.h"
#include "infergate/infra/log.h"

namespace infergate::gateway {

namespace asio = boost::asio;
namespace json = boost::json;
using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

struct CompletionsApi::Metrics {
  infra::Family<infra::Histogram>* ttft;
  infra::Family<infra::Histogram>* itl;
  infra::Family<infra::Histogram>* queue;
  infra::Family<infra::Histogram>* e2e;
  infra::Family<infra::Counter>* prompt_tokens;
  infra::Family<infra::Counter>* generation_tokens;
  infra::Family<infra::Counter>* requests;
  infra::Family<infra::Counter>* fallbacks;
  infra::Family<infra::Gauge>* running;
  infra::Family<infra::Gauge>* waiting;
  infra::Family<infra::Gauge>* kv_use;
  infra::Family<infra::Gauge>* info;
  infra::Family<infra::Counter>* prefix_hits;
  infra::Family<infra::Gauge>* kv_cached;
  std::mutex mu;  // update_gauges may run on any io thread
  std::map<std::string, std::uint64_t> prefix_hits_seen;
  // The series of each served model, looked up once (a lookup by labels builds the label list
  // and searches the family's map under its lock: a dozen of them per request).
  struct ModelSeries {
    infra::Histogram *ttft, *itl, *queue, *e2e;
    infra::Counter *prompt_tokens, *generation_tokens;
  };
  std::unordered_map<std::string, ModelSeries> of_model;
};

namespace {

std::int64_t unix_us(SystemClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
double seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

Response bad_request(const Request& req, const std::string& message, const std::string& param,
                     const std::string& code = "invalid_value") {
  // A problem with the body as a whole (not JSON, not an object) has no param: null, as OpenAI sends.
  return error_response(http::status::bad_request, message, "invalid_request_error", code,
                        param.empty() ? std::nullopt : std::optional<std::string_view>(param), req.version());
}

// Waits until the journal has the record on disk (or failed to write it).
asio::awaitable<std::error_code> append_durable(billing::UsageJournal& journal, const billing::UsageRecord& record) {
  auto initiate = [&journal, &record](auto handler) {
    auto ex = asio::get_associated_executor(handler);
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    journal.append(record, [h, ex](std::error_code ec) {
      asio::post(ex, [h, ec]() mutable { std::move (*h)(ec); });
    });
  };
  std::error_code ec = co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::error_code)>(
      initiate, asio::use_awaitable);
  co_return ec;
}

struct Ids {
  std::string id;
  std::int64_t created;
};

// The JSON of the OpenAI API (chat.completion, text_completion and their chunks), written
// straight into the response text: on the request path, building boost::json objects from
// initializer lists and serializing them cost more than the rest of the response.
void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// The request's usage as metered (the record's counts), with OpenAI's prompt_tokens_details:
// cached_tokens are the prompt tokens served from the prefix cache.
void append_usage(std::string& out, const billing::UsageRecord& rec) {
  out += "{\"prompt_tokens\":";
  append_int(out, rec.prompt_tokens);
  out += ",\"completion_tokens\":";
  append_int(out, rec.completion_tokens);
  out += ",\"total_tokens\":";
  append_int(out, rec.prompt_tokens + rec.completion_tokens);
  out += ",\"prompt_tokens_details\":{\"cached_tokens\":";
  append_int(out, rec.cached_tokens);
  out += "}}";
}

// {"id":...,"object":...,"created":...,"model":...,"system_fingerprint":null,"choices":[
void append_head(std::string& out, const char* object, const Ids& ids, const std::string& model) {
  out += "{\"id\":";
  append_json_string(out, ids.id);
  out += ",\"object\":\"";
  out += object;
  out += "\",\"created\":";
  append_int(out, ids.created);
  out += ",\"model\":";
  append_json_string(out, model);
  out += ",\"system_fingerprint\":null,\"choices\":[";
}

// {"index":0,"logprobs":null,"finish_reason":...,
void append_choice_head(std::string& out, const char* finish_reason) {
  out += "{\"index\":0,\"logprobs\":null,\"finish_reason\":";
  if (finish_reason == nullptr) {
    out += "null";
  } else {
    out += '"';
    out += finish_reason;
    out += '"';
  }
  out += ',';
}

// What a chunk carries: for chat a delta (its role, its content), for completions the text.
struct Delta {
  bool role = false;                      // chat: "role":"assistant"
  std::optional<std::string_view> text;  // chat: "content"; completions: "text" (always present)
};

// One event of a stream, as an SSE event ("data: {...}\n\n"), appended to `out`.
void append_chunk_event(std::string& out, bool chat, const Ids& ids, const std::string& model, const Delta& d,
                        const char* finish_reason, bool usage_null) {
  out += "data: ";
  append_head(out, chat ? "chat.completion.chunk" : "text_completion", ids, model);
  append_choice_head(out, finish_reason);
  if (chat) {
    out += "\"delta\":{";
    if (d.role) out += "\"role\":\"assistant\"";
    if (d.text) {
      if (d.role) out += ',';
      out += "\"content\":";
      append_json_string(out, *d.text);
    }
    out += '}';
  } else {
    out += "\"text\":";
    append_json_string(out, d.text.value_or(std::string_view()));
  }
  out += "}]";
  if (usage_null) out += ",\"usage\":null";
  out += "}\n\n";
}

// The stream's usage event (include_usage): no choices, the request's usage.
void append_usage_event(std::string& out, bool chat, const Ids& ids, const std::string& model,
                        const billing::UsageRecord& rec) {
  out += "data: ";
  append_head(out, chat ? "chat.completion.chunk" : "text_completion", ids, model);
  out += "],\"usage\":";
  append_usage(out, rec);
  out += "}\n\n";
}

// The body of a non-streaming response.
std::string completion_body(bool chat, const Ids& ids, const std::string& model, std::string_view text,
                            const char* finish_reason, const billing::UsageRecord& rec) {
  std::string out;
  out.reserve(320 + text.size());
  append_head(out, chat ? "chat.completion" : "text_completion", ids, model);
  append_choice_head(out, finish_reason);
  if (chat) {
    out += "\"message\":{\"role\":\"assistant\",\"content\":";
    append_json_string(out, text);
    out += ",\"refusal\":null}";
  } else {
    out += "\"text\":";
    append_json_string(out, text);
  }
  out += "}],\"usage\":";
  append_usage(out, rec);
  out += '}';
  return out;
}

std::string sse(const json::value& v) { return "data: " + json::serialize(v) + "\n\n"; }

const char* openai_finish(engine::FinishReason r) {
  return r == engine::FinishReason::length ? "length" : "stop";
}

// A record's end: now, and never before its start (the ledger refuses such a row), which the
// wall clock would give if it stepped back while the request ran (an NTP step, a VM resumed).
void end_record(billing::UsageRecord& rec) {
  rec.ended_at_us = std::max(unix_us(SystemClock::now()), rec.started_at_us);
}

// Completes a request's usage record from its last engine event. `client_gone`: the response
// could not be delivered (disconnect, failed write), which makes it cancelled whatever the
// engine did.
void close_record(billing::UsageRecord& rec, const engine::GenerationEvent& last, bool client_gone) {
  const bool cancelled = last.reason == engine::FinishReason::cancelled || client_gone;
  const bool failed = last.reason == engine::FinishReason::error;
  rec.prompt_tokens = last.prompt_tokens_processed;
  rec.cached_tokens = last.cached_prompt_tokens;  // never more than prompt_tokens_processed
  rec.completion_tokens = last.completion_tokens;
  rec.status = failed ? "failed" : cancelled ? "cancelled" : "completed";
  rec.finish_reason = failed ? "error" : cancelled ? "cancelled" : openai_finish(last.reason);
  end_record(rec);
  if (last.time_to_first_token.count() > 0) {
    rec.time_to_first_token_ms = std::chrono::duration_cast<std::chrono::milliseconds>(last.time_to_first_token).count();
  }
}

// A non-streaming request's metering, done off the request's thread: the engine thread closes
// the record when the sequence finishes and hands it to the journal, and the request wakes once,
// with the record durable (journal_ec says whether it is), rather than once for the engine and
// again for the journal. Written before the finished event reaches the request's inbox, read
// after it (the inbox's lock orders them).
struct EngineSideMetering {
  billing::UsageRecord rec;
  bool appended = false;  // false: the request meters itself (the hand-off failed)
  std::error_code journal_ec;
};

}  // namespace

// A streaming request's record as it stands before the engine runs, and the engine's last event
// once sent: what metering needs should the request's handler never take that event (it stopped
// with the event loops at shutdown). Metered exactly once: by the handler, or at shutdown.
struct CompletionsApi::StreamMetering {
  billing::UsageRecord rec;
  std::mutex mu;
  std::optional<engine::GenerationEvent> last;  // set on the engine thread
  std::atomic<bool> metered{false};
};
struct CompletionsApi::OpenStreams {
  std::mutex mu;
  std::unordered_set<std::shared_ptr<StreamMetering>> open;
};

std::size_t CompletionsApi::meter_abandoned_streams() {
  std::vector<std::shared_ptr<StreamMetering>> left;
  {
    std::lock_guard lock(open_streams_->mu);
    left.assign(open_streams_->open.begin(), open_streams_->open.end());
  }
  std::size_t n = 0;
  for (const auto& sm : left) {
    if (sm->metered.exchange(true)) continue;
    std::optional<engine::GenerationEvent> last;
    {
      std::lock_guard lock(sm->mu);
      last = sm->last;
    }
    if (!last) {  // the engine never finished it: stop_engines was not called first
      infra::log::error("a streamed request was not finished by its engine at shutdown; its usage is not metered",
                        {{"request_id", sm->rec.request_id}});
      continue;
    }
    billing::UsageRecord rec = sm->rec;
    close_record(rec, *last, /*client_gone=*/true);
    const std::string request_id = rec.request_id;
    journal_.append(rec, [request_id](std::error_code ec) {
      if (ec) {
        infra::log::error("usage record of a streamed request cut at shutdown not durable",
                          {{"request_id", request_id}, {"error", ec.message()}});
      }
    });
    infra::log::info("streamed request cut at shutdown metered as cancelled",
                     {{"request_id", request_id}, {"prompt_tokens", rec.prompt_tokens},
                      {"completion_tokens", rec.completion_tokens}});
    ++n;
  }
  return n;
}

CompletionsApi::CompletionsApi(InferenceApi& inference, Admission& admission, const ModelRegistry& models,
                               billing::UsageJournal& journal, const infra::AdmissionConfig& admission_cfg,
                               infra::MetricsRegistry& metrics)
    : inference_(inference), admission_(admission), models_(models), router_(models), journal_(journal),
      admission_cfg_(admission_cfg), metrics_(std::make_unique<Metrics>()),
      open_streams_(std::make_shared<OpenStreams>()) {
  const std::vector<double> token_buckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
                                             0.3,   0.4,    0.5,   0.75, 1.0,   2.5,  5.0,   7.5, 10.0};
  auto& m = *metrics_;
  m.ttft = &metrics.histogram("infergate_time_to_first_token_seconds", "Time from request to first token", {"model"},
                              token_buckets);
  m.itl = &metrics.histogram("infergate_inter_token_latency_seconds", "Time between consecutive tokens of a response",
                             {"model"}, token_buckets);
  m.queue = &metrics.histogram("infergate_request_queue_time_seconds", "Time a request waited for the engine", {"model"});
  m.e2e = &metrics.histogram("infergate_e2e_request_latency_seconds", "Time from request to last token", {"model"});
  m.prompt_tokens = &metrics.counter("infergate_prompt_tokens_total", "Prompt tokens processed", {"model"});
  m.generation_tokens = &metrics.counter("infergate_generation_tokens_total", "Tokens generated", {"model"});
  m.requests = &metrics.counter("infergate_completion_requests_total", "Completion requests by model and outcome",
                                {"model", "status", "finish_reason"});
  m.fallbacks = &metrics.counter("infergate_routing_fallbacks_total", "Requests routed away from an overloaded model",
                                 {"from", "to"});
  m.running = &metrics.gauge("infergate_requests_running", "Sequences running in the engine", {"model"});
  m.waiting = &metrics.gauge("infergate_requests_waiting", "Requests waiting for the engine", {"model"});
  m.kv_use = &metrics.gauge("infergate_kv_cache_usage_ratio", "Fraction of KV-cache blocks in use", {"model"});
  m.info = &metrics.gauge("infergate_model_info", "Served models (value 1) with their tier and device",
                          {"model", "tier", "device"});
  for (const auto& sm : models_.models()) m.info->with({sm->name, sm->tier, sm->device}).set(1);
  for (const auto& sm : models_.models()) {
    m.of_model[sm->name] = {&m.ttft->with({sm->name}), &m.itl->with({sm->name}), &m.queue->with({sm->name}),
                            &m.e2e->with({sm->name}), &m.prompt_tokens->with({sm->name}),
                            &m.generation_tokens->with({sm->name})};
  }
  m.prefix_hits = &metrics.counter("infergate_prefix_cache_hit_tokens_total",
                                   "Prompt tokens whose keys and values came from the prefix cache", {"model"});
  m.kv_cached = &metrics.gauge("infergate_kv_cache_cached_blocks",
                               "KV-cache blocks holding a published prompt prefix (in use or reusable)", {"model"});
  update_gauges();
  inference_.set_model_lister([this](const std::vector<std::string>& tiers) {
    json::array out;
    for (const ServedModel* sm : router_.allowed_models(tiers)) {
      out.push_back(json::object{{"id", sm->name},
                                 {"object", "model"},
                                 {"created", 0},
                                 {"owned_by", "infergate"},
                                 {"tier", sm->tier},
                                 {"context_length", sm->context_length}});
    }
    return out;
  });
}

CompletionsApi::~CompletionsApi() { inference_.set_model_lister({}); }

void CompletionsApi::update_gauges() {
  for (const auto& sm : models_.models()) {
    if (!sm->engine) continue;
    const auto st = sm->engine->stats();
    metrics_->running->with({sm->name}).set(static_cast<double>(st.scheduler.running));
    metrics_->waiting->with({sm->name}).set(static_cast<double>(st.scheduler.waiting));
    metrics_->kv_use->with({sm->name}).set(st.scheduler.kv_blocks_total == 0
                                               ? 0.0
                                               : static_cast<double>(st.scheduler.kv_blocks_used) / st.scheduler.kv_blocks_total);
    metrics_->kv_cached->with({sm->name}).set(static_cast<double>(st.scheduler.kv_blocks_cached));
    std::lock_guard lock(metrics_->mu);
    std::uint64_t& seen = metrics_->prefix_hits_seen[sm->name];
    if (st.scheduler.prefix_cache_hit_tokens > seen) {
      metrics_->prefix_hits->with({sm->name}).inc(st.scheduler.prefix_cache_hit_tokens - seen);
      seen = st.scheduler.prefix_cache_hit_tokens;
    }
  }
}

void CompletionsApi::add_routes(Router& router) {
  router.add(http::verb::post, "/v1/chat/completions",
             [this](Request& req, RequestContext& ctx) { return handle(req, ctx, true); });
  router.add(http::verb::post, "/v1/completions",
             [this](Request& req, RequestContext& ctx) { return handle(req, ctx, false); });
}

asio::awaitable<Response> CompletionsApi::handle(Request& req, RequestContext& ctx, bool chat) {
  const auto started_sys = SystemClock::now();
  const auto started = SteadyClock::now();
  std::variant<Response, AuthResult> authed = co_await inference_.authenticate(req);
  if (auto* refused = std::get_if<Response>(&authed)) co_return std::move(*refused);
  const AuthResult auth = std::get<AuthResult>(std::move(authed));
  const Principal& who = auth.principal();

  CompletionParams p;
  try {
    const json::object body = parse_json_object(req);
    p = chat ? parse_chat_request(body) : parse_completion_request(body);
  } catch (const BadInput& e) {
    co_return bad_request(req, e.what(), e.param());
  }

  // Tokenize with each candidate model's own tokenizer (routing asks for the counts it needs).
  std::map<const ServedModel*, std::vector<std::int32_t>> prompts;
  auto prompt_tokens = [&](const ServedModel& m) -> std::int64_t {
    auto it = prompts.find(&m);
    if (it != prompts.end()) return static_cast<std::int64_t>(it->second.size());
    const engine::Tokenizer& tok = m.model->tokenizer();
    std::vector<std::int32_t> ids;
    if (chat) {
      for (std::size_t i = 0; i < p.messages.size(); ++i) {
        for (const auto& reserved : m.reserved_texts) {
          if (p.messages[i].content.find(reserved) != std::string::npos) {
            throw BadInput("messages[" + std::to_string(i) + "].content",
                           "messages[" + std::to_string(i) + "].content contains '" + reserved +
                               "', which is a control token of this model's chat format; remove it.");
          }
        }
      }
      const std::string bos = tok.spec().add_bos && tok.bos() >= 0 ? tok.token_bytes(tok.bos()) : std::string();
      std::string text;
      try {
        text = engine::render_chat(m.chat, p.messages, bos, true);
      } catch (const std::invalid_argument& e) {
        throw BadInput("messages", e.what());
      }
      ids = tok.encode(text, false, true);
    } else {
      ids = tok.encode(p.prompt, tok.spec().add_bos, false);
    }
    const auto n = static_cast<std::int64_t>(ids.size());
    prompts.emplace(&m, std::move(ids));
    return n;
  };
  auto load = [](const ServedModel& m) {
    const auto st = m.engine->stats();
    return ModelLoad{st.scheduler.waiting + m.routing_pending.load(std::memory_order_relaxed),
                     st.scheduler.kv_blocks_total == 0 ? 0.0
                                                       : static_cast<double>(st.scheduler.kv_blocks_used) / st.scheduler.kv_blocks_total};
  };
  std::variant<RouteChoice, RouteError> routed;
  try {
    routed = router_.route(p.model, who.allowed_tiers, prompt_tokens, p.max_tokens.value_or(1), load);
  } catch (const BadInput& e) {
    co_return bad_request(req, e.what(), e.param());
  }
  if (auto* err = std::get_if<RouteError>(&routed)) {
    switch (err->kind) {
      case RouteError::not_found:
        co_return error_response(http::status::not_found, err->message, "invalid_request_error", "model_not_found",
                                 "model", req.version());
      case RouteError::not_allowed:
        co_return error_response(http::status::forbidden, err->message, "permission_error", "model_not_allowed", "model",
                                 req.version());
      case RouteError::context_exceeded:
        co_return bad_request(req, err->message, p.max_tokens ? "max_tokens" : (chat ? "messages" : "prompt"),
                              "context_length_exceeded");
      case RouteError::overloaded: {
        Response res = error_response(http::status::service_unavailable, err->message, "server_error", "model_overloaded",
                                      std::nullopt, req.version());
        res.set(http::field::retry_after, std::to_string(std::max(1, err->retry_after_s)));
        co_return res;
      }
    }
  }
  const RouteChoice choice = std::get<RouteChoice>(routed);
  const ServedModel& model = *choice.model;
  // Counted as waiting on this model from now until it is in the engine's queue.
  struct Pending {
    const ServedModel& m;
    bool counted = true;
    explicit Pending(const ServedModel& model_) : m(model_) { m.routing_pending.fetch_add(1, std::memory_order_relaxed); }
    void done() {
      if (counted) m.routing_pending.fetch_sub(1, std::memory_order_relaxed);
      counted = false;
    }
    ~Pending() { done(); }
  } pending(model);
  if (choice.fallback) {
    // The request asked for something else, whose first choice was overloaded.
    metrics_->fallbacks->with({p.model, model.name}).inc();
  }
  const std::vector<std::int32_t>& prompt = prompts.at(&model);
  const std::int64_t n_prompt = static_cast<std::int64_t>(prompt.size());
  // Without max_tokens: the default, within the context and the tokens-per-minute limits of the
  // tenant and the key (a reservation above them could never be admitted).
  std::int64_t max_new = 0;
  if (p.max_tokens) {
    max_new = *p.max_tokens;
  } else {
    max_new = reservation_size(n_prompt, std::nullopt, model.context_length, admission_cfg_.default_max_tokens,
                               auth.record->tenant_limits, auth.record->key_limits)
                  .max_tokens;
  }

  // The usage record, filled in as the request goes.
  billing::UsageRecord rec;
  rec.tenant_id = *who.tenant_id;
  rec.request_id = ctx.request_id;
  rec.api_key_id = who.key_id;
  rec.model = model.name;
  rec.tier = model.tier;
  rec.started_at_us = unix_us(started_sys);

  std::variant<Response, AdmissionDecision> admitted = co_await inference_.admit(req, auth, n_prompt + max_new);
  if (auto* refused = std::get_if<Response>(&admitted)) {
    rec.status = "refused";
    end_record(rec);
    journal_.append(rec, [](std::error_code) {});  // refusals are recorded, not waited for
    metrics_->requests->with({model.name, "refused", ""}).inc();
    co_return std::move(*refused);
  }
  const AdmissionDecision decision = std::get<AdmissionDecision>(std::move(admitted));

  // Run it.
  auto ex = co_await asio::this_coro::executor;
  // However long it runs, its reservation is not released at its expiry meanwhile.
  const std::shared_ptr<void> held = admission_.hold(*decision.reservation, ex);
  auto inbox = std::make_shared<GenerationInbox>(ex, /*wake_for_every_event=*/p.stream);
  engine::GenerationRequest g;
  g.tenant = *who.tenant_id;
  g.weight = static_cast<std::uint32_t>(std::max(1, who.scheduling_weight));
  g.prompt = prompt;
  g.sampling.temperature = p.temperature;
  g.sampling.top_p = p.top_p;
  g.sampling.top_k = p.top_k;
  g.sampling.seed = p.seed;
  g.sampling.max_tokens = max_new;
  g.sampling.stop = p.stop;
  if (chat) g.sampling.stop_tokens = model.stop_tokens;
  std::shared_ptr<EngineSideMetering> metering;
  std::shared_ptr<StreamMetering> stream_metering;
  if (!p.stream) {
    metering = std::make_shared<EngineSideMetering>();
    metering->rec = rec;
  } else {
    stream_metering = std::make_shared<StreamMetering>();
    stream_metering->rec = rec;
  }
  // Open (for meter_abandoned_streams) once submitted, until this handler is done with it or
  // its frame is destroyed.
  struct OpenStream {
    std::shared_ptr<OpenStreams> streams;
    std::shared_ptr<StreamMetering> sm;
    OpenStream(std::shared_ptr<OpenStreams> s, std::shared_ptr<StreamMetering> m) : streams(std::move(s)), sm(std::move(m)) {
      if (!sm) return;
      std::lock_guard lock(streams->mu);
      streams->open.insert(sm);
    }
    ~OpenStream() {
      if (!sm) return;
      std::lock_guard lock(streams->mu);
      streams->open.erase(sm);
    }
    OpenStream(const OpenStream&) = delete;
    OpenStream& operator=(const OpenStream&) = delete;
  };
  g.on_event = [inbox, metering, stream_metering, journal = &journal_](const engine::GenerationEvent& ev) {
    if (!ev.finished || !metering) {
      if (ev.finished && stream_metering) {
        std::lock_guard lock(stream_metering->mu);
        stream_metering->last = ev;
      }
      inbox->push(ev);
      return;
    }
    // Engine thread: the record goes to the journal now; the request sees the finished event
    // once the record is durable (or failed to be).
    try {
      close_record(metering->rec, ev, false);
      metering->appended = true;
      journal->append(metering->rec, [inbox, metering, ev](std::error_code ec) {
        metering->journal_ec = ec;
        inbox->push(ev);
      });
    } catch (const std::exception&) {  // not queued (out of memory): the request meters itself
      metering->appended = false;
      inbox->push(ev);
    }
  };
  engine::Engine::Handle handle = 0;
  std::optional<std::string> submit_error;
  try {
    handle = model.engine->submit(std::move(g));
  } catch (const std::exception& e) {
    submit_error = e.what();
  }
  pending.done();
  if (submit_error) {  // checked before routing already; kept for safety
    co_await admission_.settle(*decision.reservation, 0);
    co_return bad_request(req, *submit_error, chat ? "messages" : "prompt");
  }
  const OpenStream open_stream(open_streams_, stream_metering);
  ctx.stream->watch_disconnect([inbox] { inbox->interrupt(); });

  const Ids ids{(chat ? "chatcmpl-" : "cmpl-") + ctx.request_id,
                std::chrono::duration_cast<std::chrono::seconds>(started_sys.time_since_epoch()).count()};
  auto headers = [&](Response& res) {
    res.set("x-infergate-model", model.name);
    res.set("x-infergate-tier", model.tier);
    if (choice.fallback) res.set("x-infergate-fallback", p.model);
    set_rate_limit_headers(res, decision.rate);
  };
  bool streaming_ok = true;
  if (p.stream) {
    Response head{http::status::ok, req.version()};
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    headers(head);
    streaming_ok = co_await ctx.stream->start(head);
    if (streaming_ok && chat) {
      std::string data;
      append_chunk_event(data, true, ids, model.name, Delta{true, std::string_view()}, nullptr, p.include_usage);
      streaming_ok = co_await ctx.stream->write(data);
    }
    if (!streaming_ok) model.engine->cancel(handle);
  }

  std::string text;
  engine::GenerationEvent last;
  std::optional<SteadyClock::time_point> last_token_at;
  bool cancel_sent = !streaming_ok;
  const Metrics::ModelSeries* series = &metrics_->of_model.at(model.name);
  for (;;) {
    std::optional<engine::GenerationEvent> ev = co_await inbox->next();
    if (!ev) {  // the client went away: stop the sequence, then wait for its last event
      if (!cancel_sent) model.engine->cancel(handle);
      cancel_sent = true;
      continue;
    }
    if (ev->token >= 0) {  // by the engine's clock: a non-streaming request reads its tokens at the end
      if (last_token_at) series->itl->observe(seconds(ev->at - *last_token_at));
      last_token_at = ev->at;
    }
    if (ev->finished) {  // its text (held back until the end) goes out once, with the final chunk below
      last = std::move(*ev);
      break;
    }
    if (p.stream && streaming_ok && !ev->text.empty()) {
      std::string data;
      append_chunk_event(data, chat, ids, model.name, Delta{false, ev->text}, nullptr, p.include_usage);
      streaming_ok = co_await ctx.stream->write(data);
      if (!streaming_ok && !cancel_sent) {
        model.engine->cancel(handle);
        cancel_sent = true;
      }
    } else if (!p.stream) {
      text += ev->text;
    }
  }

  // Meter: the record is durable before the final bytes go out. A non-streaming request's went
  // to the journal from the engine thread (EngineSideMetering); a streaming one's goes now, as
  // its status depends on what reached the client.
  std::optional<std::error_code> metered;
  if (metering && metering->appended) {
    rec = metering->rec;
    metered = metering->journal_ec;
  } else {
    close_record(rec, last, inbox->interrupted() || !streaming_ok);
    // From here this handler meters it (meter_abandoned_streams runs only after the event loops
    // stopped, so it cannot have yet).
    if (stream_metering) stream_metering->metered = true;
  }
  const bool cancelled = rec.status == "cancelled";
  const bool failed = rec.status == "failed";
  if (last.time_to_first_token.count() > 0) series->ttft->observe(seconds(last.time_to_first_token));
  series->queue->observe(seconds(last.queue_time));
  // To the last token by the engine's clock (a non-streaming request hears of it only once its
  // record is durable).
  series->e2e->observe(seconds((last.at == SteadyClock::time_point{} ? SteadyClock::now() : last.at) - started));
  series->prompt_tokens->inc(static_cast<std::uint64_t>(rec.prompt_tokens));
  series->generation_tokens->inc(static_cast<std::uint64_t>(rec.completion_tokens));
  metrics_->requests->with({model.name, rec.status, rec.finish_reason}).inc();
  // The reservation is settled for the tokens used whether or not the record lands (a withheld
  // result still ran). The response does not wait for it: the settlement joins the tenant's
  // admission queue, so the tenant's next admission here sees it, and goes with the next call.
  const std::int64_t used = rec.prompt_tokens + rec.completion_tokens;
  admission_.settle_in_background(*decision.reservation, used, ex);
  std::error_code journal_ec;
  if (metered) {
    journal_ec = *metered;
  } else {
    journal_ec = co_await append_durable(journal_, rec);
  }
  if (journal_ec) {
    infra::log::error("usage record not durable; the response is not acknowledged",
                      {{"request_id", ctx.request_id}, {"error", journal_ec.message()}});
  }

  Response res;
  if (journal_ec) {
    res = error_response(http::status::internal_server_error,
                         "The request's usage could not be recorded, so its result is withheld (request id " +
                             ctx.request_id + "). Retry.",
                         "server_error", "usage_not_recorded", std::nullopt, req.version());
    if (p.stream && streaming_ok) {
      const std::string data = sse(json::object{{"error", error_body("usage could not be recorded; the response is incomplete",
                                                                     "server_error", "usage_not_recorded")}});
      co_await ctx.stream->write(data);
      co_await ctx.stream->finish();
    }
  } else if (failed) {
    res = error_response(http::status::internal_server_error, "The model failed: " + last.error, "server_error",
                         "engine_error", std::nullopt, req.version());
    if (p.stream && streaming_ok) {
      const std::string data = sse(json::object{{"error", error_body("The model failed: " + last.error, "server_error", "engine_error")}});
      co_await ctx.stream->write(data);
      co_await ctx.stream->finish();
    }
  } else if (p.stream) {
    if (streaming_ok && !cancelled) {
      std::string tail;
      if (chat && !last.text.empty()) {
        append_chunk_event(tail, true, ids, model.name, Delta{false, last.text}, nullptr, p.include_usage);
      }
      // The final chunk: chat's with an empty delta, completions' with the last text.
      append_chunk_event(tail, chat, ids, model.name,
                         chat ? Delta{} : Delta{false, last.text}, openai_finish(last.reason), p.include_usage);
      if (p.include_usage) append_usage_event(tail, chat, ids, model.name, rec);
      tail += "data: [DONE]\n\n";
      if (co_await ctx.stream->write(tail)) co_await ctx.stream->finish();
    }
    res = Response{http::status::ok, req.version()};  // already sent
  } else {
    text += last.text;
    res = json_text_response(http::status::ok,
                             completion_body(chat, ids, model.name, text, openai_finish(last.reason), rec),
                             req.version());
    headers(res);
  }
  co_return res;
}

}  // namespace infergate::gateway
