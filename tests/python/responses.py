"""The Responses API through TokenRouter with the official OpenAI Python SDK, unchanged, against every
provider: plain and streamed answers (the exact event sequence, one response id), function tools and
tool outputs continued with `previous_response_id`, a two-turn tool call with a thinking model whose
second turn lands on another data plane, `GET`/`DELETE` of stored responses, and the errors."""

import os
import sys

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["TOKENROUTER_BASE_URL"], api_key=os.environ["TOKENROUTER_API_KEY"])
# A second data plane sharing the first one's Redis (or the same one when there is no Redis).
second = OpenAI(
    base_url=os.environ.get("TOKENROUTER_BASE_URL_2", os.environ["TOKENROUTER_BASE_URL"]),
    api_key=os.environ["TOKENROUTER_API_KEY"],
)
# provider=model pairs, one per provider kind
models = dict(pair.split("=", 1) for pair in os.environ["TOKENROUTER_RESPONSES_MODELS"].split(","))
thinking = dict(pair.split("=", 1) for pair in os.environ["TOKENROUTER_THINKING_MODELS"].split(","))
checks = []


def check(name, ok, detail=""):
    checks.append(name)
    if not ok:
        print(f"FAILED: {name} {detail}")
        sys.exit(1)
    print(f"ok: {name}")


print(f"openai {openai.__version__}")

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}

for provider, model in models.items():
    r = client.responses.create(model=model, input="Say hi to Ada", instructions="Be brief.", max_output_tokens=200)
    check(f"{provider}: plain answer", r.status == "completed" and "Say hi to Ada" in r.output_text, r)
    check(f"{provider}: a response id", r.id.startswith("resp"), r.id)
    check(f"{provider}: usage", r.usage.input_tokens > 0 and r.usage.output_tokens > 0, r.usage)
    check(f"{provider}: instructions echoed", r.instructions == "Be brief.", r.instructions)

    kinds, ids, text = [], set(), ""
    with client.responses.stream(model=model, input="Stream to Bob") as stream:
        for event in stream:
            kinds.append(event.type)
            if hasattr(event, "response"):
                ids.add(event.response.id)
            if event.type == "response.output_text.delta":
                text += event.delta
        final = stream.get_final_response()
    check(f"{provider}: stream opens with created, in_progress", kinds[:2] == ["response.created", "response.in_progress"], kinds)
    check(f"{provider}: stream has text deltas", "response.output_text.delta" in kinds, kinds)
    check(f"{provider}: stream ends with completed", kinds[-1] == "response.completed", kinds)
    check(f"{provider}: one response id across the events", len(ids) == 1 and final.id in ids, ids)
    check(f"{provider}: the deltas are the final text", text == final.output_text and "Stream to Bob" in text, (text, final.output_text))

    raw = client.responses.create(model=model, input="Raw events", stream=True)
    seq = [e.sequence_number for e in raw]
    check(f"{provider}: sequence numbers count up from 0", seq == list(range(len(seq))), seq)

    # A function call, then its output sent back through previous_response_id.
    t = client.responses.create(model=model, input="What is the weather in Paris?", tools=[WEATHER])
    calls = [o for o in t.output if o.type == "function_call"]
    check(f"{provider}: a function call", len(calls) == 1 and calls[0].name == "get_weather", t.output)
    check(f"{provider}: its arguments follow the schema", "city" in calls[0].arguments, calls[0].arguments)
    t2 = client.responses.create(
        model=model,
        previous_response_id=t.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21C"}],
        tools=[WEATHER],
    )
    check(f"{provider}: the tool output continues the conversation", "sunny, 21C" in t2.output_text, t2.output_text)
    check(f"{provider}: previous_response_id echoed", t2.previous_response_id == t.id, t2.previous_response_id)

    # Streamed function call arguments.
    kinds, args = [], ""
    for event in client.responses.create(model=model, input="Weather in Rome?", tools=[WEATHER], stream=True):
        kinds.append(event.type)
        if event.type == "response.function_call_arguments.delta":
            args += event.delta
    check(f"{provider}: streamed arguments", "response.function_call_arguments.delta" in kinds and "city" in args, kinds)

    got = client.responses.retrieve(r.id)
    check(f"{provider}: GET a stored response", got.id == r.id and got.output_text == r.output_text)

    schema = {"format": {"type": "json_schema", "name": "person", "strict": True, "schema": {
        "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": False}}}
    if provider in ("deepseek", "anthropic"):
        # No structured outputs in the catalog for these models: a 400 in the Responses API's names.
        try:
            client.responses.create(model=model, input="Give me JSON", text=schema)
            check(f"{provider}: text.format json_schema refused", False)
        except openai.BadRequestError as e:
            check(f"{provider}: text.format json_schema refused", e.param.startswith("text.format"), e)
    else:
        j = client.responses.create(model=model, input="Give me JSON", text=schema)
        check(f"{provider}: text.format json_schema", j.output_text.startswith("{") and "name" in j.output_text, j.output_text)

# A thinking model: turn 1 calls a tool on the first data plane, turn 2 continues on the second.
for provider, model in thinking.items():
    t = client.responses.create(
        model=model,
        input="Weather in Oslo?",
        tools=[WEATHER],
        reasoning={"effort": "low"},
        include=["reasoning.encrypted_content"],
    )
    kinds = [o.type for o in t.output]
    check(f"{provider} thinking: reasoning then a function call", kinds[0] == "reasoning" and "function_call" in kinds, kinds)
    if provider in ("anthropic", "gemini"):
        # Anthropic's signed thinking blocks and Gemini's thought signatures ride in
        # encrypted_content; DeepSeek's reasoning stays in the gateway's reasoning cache (shared
        # through Redis).
        check(f"{provider} thinking: encrypted content on request", (t.output[0].encrypted_content or "").startswith("trr1."), t.output[0])
    call = next(o for o in t.output if o.type == "function_call")
    t2 = second.responses.create(
        model=model,
        previous_response_id=t.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "snow"}],
        tools=[WEATHER],
        reasoning={"effort": "low"},
    )
    check(f"{provider} thinking: turn 2 on the second data plane", t2.status == "completed" and "snow" in t2.output_text, t2.output_text)

# store: false is not kept; DELETE removes a stored one.
some = next(iter(models.values()))
s = client.responses.create(model=some, input="not kept", store=False)
try:
    client.responses.retrieve(s.id)
    check("store false is not kept", False)
except openai.NotFoundError:
    check("store false is not kept", True)
d = client.responses.create(model=some, input="delete me")
client.responses.delete(d.id)
try:
    client.responses.retrieve(d.id)
    check("DELETE removes it", False)
except openai.NotFoundError:
    check("DELETE removes it", True)

# Errors: what a translated provider cannot do is a 400 naming the parameter.
translated = models["anthropic"]
try:
    client.responses.create(model=translated, input="search", tools=[{"type": "web_search"}])
    check("hosted tool on a translated provider is refused", False)
except openai.BadRequestError as e:
    check("hosted tool on a translated provider is refused", e.code == "unsupported_parameter" and e.param == "tools[0].type", e)
try:
    client.responses.create(model=translated, input="x", previous_response_id="resp_unknown")
    check("unknown previous_response_id", False)
except openai.BadRequestError as e:
    check("unknown previous_response_id", e.code == "previous_response_not_found" and e.param == "previous_response_id", e)
try:
    client.responses.create(model="no-such-model", input="x")
    check("unknown model", False)
except openai.NotFoundError as e:
    check("unknown model", e.code == "model_not_found", e)
try:
    client.responses.create(model=translated, input="x", max_output_tokens=2)
    check("max_output_tokens below 16", False)
except openai.BadRequestError as e:
    check("max_output_tokens below 16", e.param == "max_output_tokens", e)

print(f"{len(checks)} checks")
print("all responses checks passed")
