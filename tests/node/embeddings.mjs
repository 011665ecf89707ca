// Embeddings through TokenRouter with the official OpenAI Node SDK, the Node twin of
// tests/python/embeddings.py: the SDK's default base64 (decoded by the SDK), floats, `dimensions`
// (OpenAI, Mistral's `output_dimension`, Gemini's `outputDimensionality`) and the errors.
//
// Environment: TOKENROUTER_BASE_URL, TOKENROUTER_API_KEY (set by tests/tests/e2e/embeddings.rs).

import OpenAI, { BadRequestError } from 'openai';
import { VERSION } from 'openai/version';

const client = new OpenAI({ baseURL: process.env.TOKENROUTER_BASE_URL, apiKey: process.env.TOKENROUTER_API_KEY, maxRetries: 0 });

function check(condition, what, detail = '') {
  if (!condition) {
    console.log(`FAILED: ${what}${detail && ` (${typeof detail === 'string' ? detail : JSON.stringify(detail)})`}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

console.log(`openai (node) ${VERSION}`);
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

// The Node SDK asks for base64 by default and decodes it into floats.
const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one two', 'three', 'one two'] });
check(r.data.map((d) => d.index).join() === '0,1,2', 'three embeddings in order');
check(r.data.every((d) => d.embedding.length === 1536), '1536 floats each', r.data[0].embedding.length);
check(Math.abs(norm(r.data[0].embedding) - 1) < 1e-3, 'unit length');
check(r.usage.prompt_tokens > 0, 'usage', r.usage);

const f = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'one two', encoding_format: 'float' });
check(f.data[0].embedding.every((x, i) => Math.abs(x - r.data[0].embedding[i]) < 1e-6), 'floats match the decoded base64');

const d = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'x', dimensions: 256 });
check(d.data[0].embedding.length === 256, 'dimensions', d.data[0].embedding.length);
const m = await client.embeddings.create({ model: 'mis:codestral-embed', input: 'x', dimensions: 128 });
check(m.data[0].embedding.length === 128, 'Mistral output_dimension');
const g = await client.embeddings.create({ model: 'gem:gemini-embedding-001', input: ['one two', 'three'], dimensions: 768 });
check(g.data.length === 2 && g.data[0].embedding.length === 768, 'Gemini: base64 encoded by TokenRouter, decoded by the SDK');

try {
  await client.embeddings.create({ model: 'text-embedding-ada-002', input: 'x', dimensions: 256 });
  check(false, 'ada-002 refuses dimensions');
} catch (e) {
  check(e instanceof BadRequestError && e.code === 'unsupported_parameter' && e.param === 'dimensions', 'ada-002 refuses dimensions', `${e.code} ${e.param}`);
}
console.log('all embeddings checks passed');
