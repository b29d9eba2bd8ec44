// The official `openai` npm SDK (v4) against a running infergate, unchanged but for baseURL and
// the key. Run by the e2e test OpenAiSdk.* with:
//   IG_NPM_DIR     where `npm install openai@4` put node_modules
//   IG_BASE_URL    http://127.0.0.1:<port>/v1
//   IG_KEY         a key whose plan allows the model's tier
//   IG_KEY_NO_TIER a key whose plan does not (403)
//   IG_KEY_ONE_RPM a key limited to one request per minute (429 on the second)
//   IG_MODEL       the served model's name
// Prints one line per check; exits non-zero on the first failure.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const require = createRequire(env('IG_NPM_DIR') + '/');
const OpenAI = require('openai');
const { AuthenticationError, PermissionDeniedError, NotFoundError, RateLimitError, BadRequestError } = OpenAI;

const baseURL = env('IG_BASE_URL');
const model = env('IG_MODEL');
// No retries: a 429 must surface, not be retried after Retry-After.
const client = (apiKey) => new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 20000 });
const ok = client(env('IG_KEY'));
const messages = [{ role: 'user', content: 'hello there' }];

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
    process.exit(1);
  }
}

// The error `promise` rejects with, which must be an instance of `type`.
async function rejection(promise, type) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e?.constructor?.name}: ${e?.message}`);
    return e;
  }
  assert.fail(`expected ${type.name}, but the call succeeded`);
}

// First, so that the two requests fall in one rate-limit minute (the test starts clear of its end).
await check('429 is RateLimitError', async () => {
  const limited = client(env('IG_KEY_ONE_RPM'));
  await limited.completions.create({ model, prompt: 'a', max_tokens: 1 });
  const e = await rejection(limited.completions.create({ model, prompt: 'a', max_tokens: 1 }), RateLimitError);
  assert.equal(e.status, 429);
  assert.equal(e.code, 'rate_limit_exceeded');
  assert.ok(Number(e.headers['retry-after']) >= 1, `retry-after ${e.headers['retry-after']}`);
});

await check('chat completion', async () => {
  const { data, response } = await ok.chat.completions
    .create({ model, messages, max_tokens: 8, temperature: 0 })
    .withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.model, model);
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(typeof data.choices[0].message.content, 'string');
  assert.equal(data.choices[0].finish_reason, 'length');
  assert.equal(data.usage.completion_tokens, 8);
  assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + 8);
  assert.equal(typeof data.usage.prompt_tokens_details.cached_tokens, 'number');
  assert.ok(data.usage.prompt_tokens_details.cached_tokens < data.usage.prompt_tokens);
  assert.equal(response.headers.get('x-infergate-model'), model);
  assert.ok(response.headers.get('x-request-id'));
});

await check('chat completion stream with usage', async () => {
  const whole = await ok.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0 });
  const stream = await ok.chat.completions.create({
    model, messages, max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '', role = null, finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    role ??= choice.delta.role ?? null;
    text += choice.delta.content ?? '';
    finish = choice.finish_reason ?? finish;
  }
  assert.ok(chunks >= 3, `only ${chunks} chunks`);
  assert.equal(role, 'assistant');
  assert.equal(finish, 'length');
  assert.equal(text, whole.choices[0].message.content);
  assert.ok(usage, 'no usage chunk');
  assert.equal(usage.completion_tokens, 10);
  assert.equal(usage.prompt_tokens, whole.usage.prompt_tokens);
});

await check('completion and completion stream', async () => {
  const c = await ok.completions.create({ model, prompt: 'Once upon a time', max_tokens: 6, temperature: 0 });
  assert.equal(c.object, 'text_completion');
  assert.equal(typeof c.choices[0].text, 'string');
  assert.equal(c.choices[0].finish_reason, 'length');
  assert.equal(c.usage.completion_tokens, 6);
  const stream = await ok.completions.create({
    model, prompt: 'Once upon a time', max_tokens: 6, temperature: 0, stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, c.choices[0].text);
});

await check('models list', async () => {
  const ids = [];
  for await (const m of ok.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [model]);
});

await check('401 is AuthenticationError', async () => {
  const e = await rejection(
    client('ig_live_0123456789abcdef_' + '0'.repeat(48)).chat.completions.create({ model, messages, max_tokens: 1 }),
    AuthenticationError);
  assert.equal(e.status, 401);
  assert.equal(e.code, 'invalid_api_key');
});

await check('403 is PermissionDeniedError', async () => {
  const e = await rejection(
    client(env('IG_KEY_NO_TIER')).chat.completions.create({ model, messages, max_tokens: 1 }), PermissionDeniedError);
  assert.equal(e.status, 403);
  assert.equal(e.code, 'model_not_allowed');
  assert.equal(e.param, 'model');
});

await check('404 is NotFoundError', async () => {
  const e = await rejection(ok.chat.completions.create({ model: 'no-such-model', messages, max_tokens: 1 }),
                            NotFoundError);
  assert.equal(e.status, 404);
  assert.equal(e.code, 'model_not_found');
});

await check('400 is BadRequestError naming the param', async () => {
  const e = await rejection(ok.chat.completions.create({ model, messages, n: 2 }), BadRequestError);
  assert.equal(e.status, 400);
  assert.equal(e.param, 'n');
});

console.log('all SDK checks passed');
