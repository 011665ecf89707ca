// Conformance suite: drives a running TokenRouter data plane with the official OpenAI Node SDK, the
// Node twin of tests/python/compat.py.
//
// Environment: TOKENROUTER_BASE_URL (e.g. http://127.0.0.1:8080/v1), TOKENROUTER_API_KEY,
// TOKENROUTER_MODEL, TOKENROUTER_LIMITED_KEY (a key allowed only TOKENROUTER_MODEL). The test that
// runs it (tests/tests/e2e/node.rs) sets up the same providers as for compat.py: `loose` (accepts
// unknown fields), `ratelimited` (always 429), `garbage` (answers nonsense), `midstream` (fails
// mid-stream), `sleepy` (answers after its timeout) and `down` (unreachable). Prints one `ok: ...`
// line per check and exits non-zero on the first failed one. Plain Node, no test framework.

import OpenAI, {
  APIError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
} from 'openai';
import { VERSION } from 'openai/version';

const BASE_URL = process.env.TOKENROUTER_BASE_URL;
const KEY = process.env.TOKENROUTER_API_KEY;
const MODEL = process.env.TOKENROUTER_MODEL || 'gpt-4o-mini';
const LIMITED_KEY = process.env.TOKENROUTER_LIMITED_KEY;

if (!BASE_URL || !KEY || !LIMITED_KEY) {
  console.log('FAILED: TOKENROUTER_BASE_URL, TOKENROUTER_API_KEY and TOKENROUTER_LIMITED_KEY must be set');
  process.exit(1);
}

const client = new OpenAI({ baseURL: BASE_URL, apiKey: KEY, maxRetries: 0, timeout: 20_000 });

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
    },
  },
};

function check(condition, what, detail = '') {
  if (!condition) {
    console.log(`FAILED: ${what}${detail && ` (${detail})`}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

/** Runs `call` (awaiting a stream to its end) and returns what it threw; a check fails if nothing. */
async function thrown(what, call) {
  try {
    const result = await call();
    if (result && typeof result[Symbol.asyncIterator] === 'function') {
      for await (const _ of result) {
        // drain
      }
    }
  } catch (e) {
    return e;
  }
  check(false, `${what} must raise`);
}

/** Checks `e` is an instance of `type` (and has `status` unless that is null) and returns it. */
function expectError(e, type, status, what) {
  check(e instanceof type, `${what}: ${type.name}`, `got ${e?.constructor?.name}: ${e?.message}`);
  if (status !== null) {
    check(e.status === status, `${what}: status ${status}`, `got ${e.status}`);
  }
  return e;
}

async function chatNonStreaming() {
  const { data: resp, response } = await client.chat.completions
    .create(
      {
        model: MODEL,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Say hello' },
        ],
        temperature: 0.3,
        max_tokens: 50,
        user: JSON.stringify({ user_id: 'u-1', task: 'compat' }),
      },
      { headers: { 'x-request-id': 'node-compat-1' } },
    )
    .withResponse();
  check(response.headers.get('x-request-id') === 'node-compat-1', "x-request-id echoes the client's");
  check(resp.object === 'chat.completion', 'chat.completion object');
  check((resp.choices[0].message.content || '').includes('Say hello'), 'answer content');
  check(resp.choices[0].finish_reason === 'stop', 'finish_reason stop');
  check(resp.usage && resp.usage.total_tokens > 0, 'usage');
  // The parsed body is the JSON as sent, so TokenRouter's extension fields are plain properties.
  check(resp.provider === 'alpha', 'extension field provider readable');
  check(Number.isInteger(resp.latency_ms), 'extension field latency_ms readable');
  check(resp.x_request_id === 'node-compat-1', 'extension field x_request_id');
}

async function chatStreaming() {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'stream this please' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let finish = null;
  const ids = new Set();
  for await (const chunk of stream) {
    ids.add(chunk.id);
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta.content) text += choice.delta.content;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  check(text.includes('stream this please'), 'streamed content');
  check(ids.size === 1, 'one id across chunks');
  check(finish === 'stop', 'stream finish_reason');
  check(usage && usage.total_tokens > 0, 'usage chunk with include_usage');
}

async function toolCalls() {
  const resp = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
    tools: [WEATHER_TOOL],
  });
  const message = resp.choices[0].message;
  check(resp.choices[0].finish_reason === 'tool_calls', 'tool_calls finish reason');
  const call = message.tool_calls[0];
  check(call.type === 'function' && call.function.name === 'get_weather', 'tool name');
  check('city' in JSON.parse(call.function.arguments), 'tool arguments are JSON with the required field');

  const follow = await client.chat.completions.create({
    model: MODEL,
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: '18C and sunny' },
    ],
    tools: [WEATHER_TOOL],
  });
  check((follow.choices[0].message.content || '').includes('18C'), 'tool result turn');

  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'Weather in Rome?' }],
    tools: [WEATHER_TOOL],
    stream: true,
  });
  const names = [];
  const indices = new Set();
  let args = '';
  let finish = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      for (const tc of choice.delta.tool_calls || []) {
        indices.add(tc.index);
        if (tc.function?.name) names.push(tc.function.name);
        if (tc.function?.arguments) args += tc.function.arguments;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  check(indices.size === 1 && indices.has(0), 'streamed tool call index');
  check(names.length === 1 && names[0] === 'get_weather', 'streamed tool call name once');
  check('city' in JSON.parse(args), 'streamed tool arguments assemble into JSON');
  check(finish === 'tool_calls', 'streamed tool_calls finish reason');
}

async function everyParameter() {
  const resp = await client.chat.completions.create({
    model: MODEL,
    messages: [
      { role: 'developer', content: 'Be exact.' },
      { role: 'user', content: [{ type: 'text', text: 'All the knobs' }], name: 'tester' },
    ],
    temperature: 0.5,
    top_p: 0.9,
    max_completion_tokens: 64,
    stop: ['STOP'],
    presence_penalty: 0.1,
    frequency_penalty: 0.2,
    logit_bias: { 50256: -100 },
    seed: 7,
    n: 2,
    logprobs: true,
    top_logprobs: 2,
    metadata: { purpose: 'conformance' },
    service_tier: 'auto',
    parallel_tool_calls: false,
    tools: [WEATHER_TOOL],
    tool_choice: 'none',
    reasoning_effort: 'low',
    user: JSON.stringify({ user_id: 'u-1', task: 'conformance' }),
  });
  check(resp.choices.length === 2, 'n=2 gives two choices');
  check(
    resp.choices.every((c) => (c.message.content || '').includes('All the knobs')),
    'every parameter accepted',
  );

  // The Node SDK sends unknown body fields as they are (Python needs extra_body for this).
  const unknown = await client.chat.completions.create({
    model: 'loose:loose-m',
    messages: [{ role: 'user', content: 'with extras' }],
    x_custom_flag: true,
  });
  check(
    unknown.choices[0].message.content.includes('with extras'),
    'unknown fields forwarded to OpenAI-protocol providers',
  );
}

async function jsonMode() {
  let resp = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'Give me JSON' }],
    response_format: { type: 'json_object' },
  });
  const object = JSON.parse(resp.choices[0].message.content);
  check(object !== null && typeof object === 'object' && !Array.isArray(object), 'json_object answer parses');

  const schema = {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer' } },
    required: ['name', 'age'],
    additionalProperties: false,
  };
  resp = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'A person' }],
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
  });
  const person = JSON.parse(resp.choices[0].message.content);
  check(
    Object.keys(person).sort().join(',') === 'age,name' &&
      typeof person.name === 'string' &&
      Number.isInteger(person.age),
    'json_schema answer follows the schema',
  );
}

async function usageInStreams() {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'no usage please' }],
    stream: true,
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  check(chunks.length > 0 && chunks.every((c) => c.usage == null), 'no usage chunk unless asked');
  check(chunks.every((c) => c.provider === 'alpha'), 'extensions ride on every chunk');
}

async function models() {
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  check(ids.includes(MODEL) && ids.includes(`alpha:${MODEL}`), 'models.list includes bare and provider:model ids');
  const model = await client.models.retrieve(MODEL);
  check(model.id === MODEL && model.object === 'model', 'models.retrieve');
}

async function errors() {
  const msg = [{ role: 'user', content: 'x' }];

  const bad = new OpenAI({ baseURL: BASE_URL, apiKey: 'sk-not-a-real-key', maxRetries: 0 });
  let e = await thrown('a bad key', () => bad.chat.completions.create({ model: MODEL, messages: msg }));
  expectError(e, AuthenticationError, 401, 'bad key');
  check(e.code === 'invalid_api_key', 'bad key: code invalid_api_key');

  e = await thrown('an unknown model', () => client.chat.completions.create({ model: 'no-such-model', messages: msg }));
  expectError(e, NotFoundError, 404, 'unknown model');
  check(e.code === 'model_not_found', 'unknown model: code model_not_found');

  e = await thrown('a bad temperature', () =>
    client.chat.completions.create({ model: MODEL, messages: msg, temperature: 9 }),
  );
  expectError(e, BadRequestError, 400, 'bad temperature');
  check(e.param === 'temperature' && e.code === 'invalid_value', 'bad parameter names the param');

  e = await thrown('a bad top_p', () => client.chat.completions.create({ model: MODEL, messages: msg, top_p: 3 }));
  expectError(e, BadRequestError, 400, 'bad top_p');
  check(e.param === 'top_p' && e.code === 'invalid_value', 'bad top_p names the param');

  e = await thrown('an unknown role', () =>
    client.chat.completions.create({ model: MODEL, messages: [{ role: 'wizard', content: 'x' }] }),
  );
  expectError(e, BadRequestError, 400, 'unknown role');
  check(e.code === 'invalid_value', 'unknown role: code invalid_value');

  const limited = new OpenAI({ baseURL: BASE_URL, apiKey: LIMITED_KEY, maxRetries: 0 });
  e = await thrown('a model outside the key', () =>
    limited.chat.completions.create({ model: `alpha:${MODEL}`, messages: msg }),
  );
  expectError(e, PermissionDeniedError, 403, 'model not allowed');
  check(e.code === 'model_not_allowed', '403 model not allowed: code model_not_allowed');

  e = await thrown('a rate-limited provider', () =>
    client.chat.completions.create({ model: 'ratelimited:m', messages: msg }),
  );
  expectError(e, RateLimitError, 429, 'rate limited');
  check(e.code === 'rate_limit_exceeded', '429: code rate_limit_exceeded');
  check(e.headers?.get('retry-after') === '3', '429 carries Retry-After');

  for (const [model, status, code] of [
    ['garbage:m', 502, 'bad_upstream_response'],
    ['down:m', 503, 'provider_unavailable'],
    ['sleepy:m', 504, 'upstream_timeout'],
  ]) {
    e = await thrown(model, () => client.chat.completions.create({ model, messages: msg }));
    expectError(e, InternalServerError, status, model);
    check(e.code === code, `${status}: code ${code}`);
  }

  e = await thrown('an oversized body', () =>
    client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(300_000) }] }),
  );
  expectError(e, APIError, 413, 'oversized body');
  check(e.code === 'request_too_large', '413: code request_too_large');

  // A failure after the stream started: the SDK yields what came first, then raises.
  let received = 0;
  e = await thrown('a stream failing midway', async () => {
    const stream = await client.chat.completions.create({ model: 'midstream:m', messages: msg, stream: true });
    for await (const _ of stream) received += 1;
  });
  expectError(e, APIError, null, 'mid-stream failure');
  check(received > 0, 'mid-stream failure: chunks before the error were delivered');
  check(e.code === 'upstream_stream_error', 'mid-stream failure: code upstream_stream_error', `got ${e.code}`);
}

try {
  console.log(`openai ${VERSION} on node ${process.version}`);
  await chatNonStreaming();
  await chatStreaming();
  await toolCalls();
  await everyParameter();
  await jsonMode();
  await usageInStreams();
  await models();
  await errors();
  console.log('all node compatibility checks passed');
} catch (e) {
  console.log(`FAILED: unexpected error: ${e?.stack || e}`);
  process.exit(1);
}
