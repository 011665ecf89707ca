"""Embeddings through TokenRouter with the official OpenAI Python SDK, unchanged: the SDK's default
base64 encoding, floats, `dimensions` (mapped to Mistral's `output_dimension`), and the errors."""

import math
import os
import sys

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["TOKENROUTER_BASE_URL"], api_key=os.environ["TOKENROUTER_API_KEY"])
checks = []


def check(name, ok, detail=""):
    checks.append(name)
    if not ok:
        print(f"FAILED: {name} {detail}")
        sys.exit(1)
    print(f"ok: {name}")


print(f"openai {openai.__version__}")

# The SDK asks for base64 unless told otherwise, and decodes it into floats.
r = client.embeddings.create(model="text-embedding-3-small", input=["one two", "three", "one two"])
check("three embeddings in order", [d.index for d in r.data] == [0, 1, 2])
check("1536 floats each", all(len(d.embedding) == 1536 for d in r.data), len(r.data[0].embedding))
check("unit length", abs(math.sqrt(sum(x * x for x in r.data[0].embedding)) - 1.0) < 1e-3)
check("same text, same vector", r.data[0].embedding == r.data[2].embedding)
check("usage", r.usage.prompt_tokens == 5 and r.usage.total_tokens == 5, r.usage)
check("the provider's model", r.model == "text-embedding-3-small", r.model)

f = client.embeddings.create(model="text-embedding-3-small", input="one two", encoding_format="float")
check(
    "floats match the decoded base64",
    all(abs(a - b) < 1e-6 for a, b in zip(f.data[0].embedding, r.data[0].embedding)),
)

d = client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=256)
check("dimensions", len(d.data[0].embedding) == 256, len(d.data[0].embedding))

m = client.embeddings.create(model="mis:codestral-embed", input="x", dimensions=128)
check("Mistral gets output_dimension", len(m.data[0].embedding) == 128, len(m.data[0].embedding))

g = client.embeddings.create(model="gem:gemini-embedding-001", input=["one two", "three"], dimensions=768)
check("Gemini: one batch, OpenAI's list", [d.index for d in g.data] == [0, 1], g.data)
check("Gemini: outputDimensionality, base64 encoded by TokenRouter", len(g.data[0].embedding) == 768)
check("Gemini: distinct vectors", g.data[0].embedding != g.data[1].embedding)
gf = client.embeddings.create(model="gem:gemini-embedding-001", input="one two", encoding_format="float")
check("Gemini: floats", len(gf.data[0].embedding) == 3072 and gf.data[0].embedding[:768] == g.data[0].embedding)

try:
    client.embeddings.create(model="text-embedding-3-small", input="")
    check("empty input refused", False)
except openai.BadRequestError as e:
    check("empty input refused", e.body.get("param") == "input", e.body)

try:
    client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=256)
    check("ada-002 refuses dimensions", False)
except openai.BadRequestError as e:
    check("ada-002 refuses dimensions", e.code == "unsupported_parameter" and e.param == "dimensions", e)

try:
    client.chat.completions.create(model="text-embedding-3-small", messages=[{"role": "user", "content": "hi"}])
    check("an embeddings model is no chat model", False)
except openai.BadRequestError as e:
    check("an embeddings model is no chat model", e.param == "model" and "/v1/embeddings" in e.message, e)

try:
    client.embeddings.create(model="no-such-embedding-model", input="x")
    check("unknown model", False)
except openai.NotFoundError as e:
    check("unknown model", True)

print(f"all embeddings checks passed ({len(checks)})")
