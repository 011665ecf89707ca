// The Responses API through TokenRouter with the official OpenAI Node SDK, the Node twin of
// tests/python/responses.py: plain and streamed answers against every provider (one response id,
// sequence numbers from 0, the final text equal to the deltas), a function call continued with
// previous_response_id on a second data plane, thinking models, GET/DELETE and the errors.
//
// Environment: TOKENROUTER_BASE_URL, TOKENROUTER_BASE_URL_2 (a second data plane sharing Redis),
// TOKENROUTER_API_KEY, TOKENROUTER_RESPONSES_MODELS and TOKENROUTER_THINKING_MODELS
// (`provider=model` pairs, comma-separated). Set by tests/tests/e2e/responses.rs.

import OpenAI, { BadRequestError, NotFoundError } from 'openai';
import { VERSION } from 'openai/version';

const env = process.env;
const client = new OpenAI({ baseURL: env.TOKENROUTER_BASE_URL, apiKey: env.TOKENROUTER_API_KEY, maxRetries: 0 });
const second = new OpenAI({
  baseURL: env.TOKENROUTER_BASE_URL_2 || env.TOKENROUTER_BASE_URL,
  apiKey: env.TOKENROUTER_API_KEY,
  maxRetries: 0,
});
const pairs = (s) => Object.fromEntries(s.split(',').map((p) => p.split('=')));
const models = pairs(env.TOKENROUTER_RESPONSES_MODELS);
const thinking = pairs(env.TOKENROUTER_THINKING_MODELS);

function check(condition, what, detail = '') {
  if (!condition) {
    console.log(`FAILED: ${what}${detail && ` (${typeof detail === 'string' ? detail : JSON.stringify(detail)})`}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

async function rejects(what, call, test) {
  try {
    await call();
  } catch (e) {
    check(test(e), what, `${e.constructor.name} ${e.code} ${e.param} ${e.message}`);
    return;
  }
  check(false, what, 'no error');
}

const WEATHER = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city.',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

console.log(`openai (node) ${VERSION}`);

for (const [provider, model] of Object.entries(models)) {
  const r = await client.responses.create({ model, input: 'Say hi to Ada', instructions: 'Be brief.' });
  check(r.status === 'completed' && r.output_text.includes('Say hi to Ada'), `${provider}: plain answer`, r.output_text);
  check(r.usage.input_tokens > 0 && r.usage.output_tokens > 0, `${provider}: usage`, r.usage);

  const stream = await client.responses.create({ model, input: 'Stream to Bob', stream: true });
  const types = [];
  const ids = new Set();
  const seq = [];
  let text = '';
  let final;
  for await (const event of stream) {
    types.push(event.type);
    seq.push(event.sequence_number);
    if (event.response) ids.add(event.response.id);
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.completed') final = event.response;
  }
  check(types[0] === 'response.created' && types.at(-1) === 'response.completed', `${provider}: created … completed`, types);
  check(ids.size === 1, `${provider}: one response id`, [...ids]);
  check(seq.every((n, i) => n === i), `${provider}: sequence numbers from 0`, seq);
  const finalText = final.output.filter((o) => o.type === 'message').flatMap((o) => o.content).map((c) => c.text).join('');
  check(text === finalText && text.includes('Stream to Bob'), `${provider}: deltas make the final text`, [text, finalText]);

  const helper = client.responses.stream({ model, input: 'Helper stream', tools: [WEATHER] });
  const done = await helper.finalResponse();
  const call = done.output.find((o) => o.type === 'function_call');
  check(call && call.name === 'get_weather' && call.arguments.includes('city'), `${provider}: streamed function call`, done.output);
  const t2 = await second.responses.create({
    model,
    previous_response_id: done.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: 'cloudy' }],
    tools: [WEATHER],
  });
  check(t2.output_text.includes('cloudy'), `${provider}: continued on the second data plane`, t2.output_text);

  const got = await second.responses.retrieve(t2.id);
  check(got.id === t2.id, `${provider}: GET from the other data plane`);
}

for (const [provider, model] of Object.entries(thinking)) {
  const t = await client.responses.create({ model, input: 'Weather in Oslo?', tools: [WEATHER], reasoning: { effort: 'low' } });
  const call = t.output.find((o) => o.type === 'function_call');
  check(t.output[0].type === 'reasoning' && call, `${provider} thinking: reasoning, then a call`, t.output);
  const t2 = await second.responses.create({
    model,
    previous_response_id: t.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: 'snow' }],
    tools: [WEATHER],
    reasoning: { effort: 'low' },
  });
  check(t2.output_text.includes('snow'), `${provider} thinking: turn 2 on the second data plane`, t2.output_text);
}

const some = Object.values(models)[0];
const d = await client.responses.create({ model: some, input: 'delete me' });
const deleted = await client.responses.delete(d.id);
await rejects('DELETE removes it', () => client.responses.retrieve(d.id), (e) => e instanceof NotFoundError);
await rejects(
  'hosted tools on a translated provider',
  () => client.responses.create({ model: models.anthropic, input: 'x', tools: [{ type: 'web_search' }] }),
  (e) => e instanceof BadRequestError && e.code === 'unsupported_parameter' && e.param === 'tools[0].type',
);
await rejects(
  'unknown previous_response_id',
  () => client.responses.create({ model: models.gemini, input: 'x', previous_response_id: 'resp_nope' }),
  (e) => e instanceof BadRequestError && e.code === 'previous_response_not_found',
);
console.log('all responses checks passed');
