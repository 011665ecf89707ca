"""Conformance suite: drives a running TokenRouter data plane with the official OpenAI Python SDK.

Environment: TOKENROUTER_BASE_URL (e.g. http://127.0.0.1:8080/v1), TOKENROUTER_API_KEY,
TOKENROUTER_MODEL, TOKENROUTER_LIMITED_KEY (a key allowed only TOKENROUTER_MODEL). The test that runs
it (tests/tests/e2e/python.rs) also configures providers named `loose` (accepts unknown fields),
`ratelimited` (always 429), `garbage` (answers nonsense), `midstream` (fails mid-stream), `sleepy`
(answers after its timeout) and `down` (unreachable). Exits non-zero on the first failed check.
"""

import json
import os
import sys

import openai
from openai import OpenAI

BASE_URL = os.environ["TOKENROUTER_BASE_URL"]
KEY = os.environ["TOKENROUTER_API_KEY"]
MODEL = os.environ.get("TOKENROUTER_MODEL", "gpt-4o-mini")

client = OpenAI(base_url=BASE_URL, api_key=KEY, max_retries=0, timeout=20)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def chat_non_streaming():
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
        temperature=0.3,
        max_tokens=50,
        user=json.dumps({"user_id": "u-1", "task": "compat"}),
        extra_headers={"x-request-id": "py-compat-1"},
    )
    check(raw.headers.get("x-request-id") == "py-compat-1", "x-request-id echoes the client's")
    resp = raw.parse()
    check(resp.object == "chat.completion", "chat.completion object")
    check("Say hello" in (resp.choices[0].message.content or ""), "answer content")
    check(resp.choices[0].finish_reason == "stop", "finish_reason stop")
    check(resp.usage is not None and resp.usage.total_tokens > 0, "usage")
    extra = resp.model_extra or {}
    check(extra.get("provider") == "alpha", "extension field provider readable")
    check(isinstance(extra.get("latency_ms"), int), "extension field latency_ms readable")
    check(extra.get("x_request_id") == "py-compat-1", "extension field x_request_id")


def chat_streaming():
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, ids, usage, finish = [], set(), None, None
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    check("stream this please" in "".join(text), "streamed content")
    check(len(ids) == 1, "one id across chunks")
    check(finish == "stop", "stream finish_reason")
    check(usage is not None and usage.total_tokens > 0, "usage chunk with include_usage")


def tool_calls():
    resp = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    message = resp.choices[0].message
    check(resp.choices[0].finish_reason == "tool_calls", "tool_calls finish reason")
    call = message.tool_calls[0]
    check(call.function.name == "get_weather", "tool name")
    args = json.loads(call.function.arguments)
    check("city" in args, "tool arguments are JSON with the required field")

    follow = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    check("18C" in (follow.choices[0].message.content or ""), "tool result turn")

    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Rome?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    names, arguments = [], ""
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                check(tc.index == 0, "streamed tool call index")
                if tc.function and tc.function.name:
                    names.append(tc.function.name)
                if tc.function and tc.function.arguments:
                    arguments += tc.function.arguments
    check(names == ["get_weather"], "streamed tool call name once")
    check("city" in json.loads(arguments), "streamed tool arguments assemble into JSON")


def errors():
    bad = OpenAI(base_url=BASE_URL, api_key="sk-not-a-real-key", max_retries=0)
    try:
        bad.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        check(False, "bad key must raise")
    except openai.AuthenticationError as e:
        check(e.status_code == 401, "bad key raises AuthenticationError")
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        check(False, "unknown model must raise")
    except openai.NotFoundError as e:
        check(e.code == "model_not_found", "unknown model raises NotFoundError")
    try:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], temperature=9)
        check(False, "bad temperature must raise")
    except openai.BadRequestError as e:
        check(e.param == "temperature", "bad parameter raises BadRequestError naming the param")


def every_parameter():
    resp = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "Be exact."},
            {"role": "user", "content": [{"type": "text", "text": "All the knobs"}], "name": "tester"},
        ],
        temperature=0.5,
        top_p=0.9,
        max_completion_tokens=64,
        stop=["STOP"],
        presence_penalty=0.1,
        frequency_penalty=0.2,
        logit_bias={"50256": -100},
        seed=7,
        n=2,
        logprobs=True,
        top_logprobs=2,
        metadata={"purpose": "conformance"},
        service_tier="auto",
        parallel_tool_calls=False,
        tools=[WEATHER_TOOL],
        tool_choice="none",
        reasoning_effort="low",
        user=json.dumps({"user_id": "u-1", "task": "conformance"}),
    )
    check(len(resp.choices) == 2, "n=2 gives two choices")
    check(all("All the knobs" in (c.message.content or "") for c in resp.choices), "every parameter accepted")

    unknown = client.chat.completions.create(
        model="loose:loose-m",
        messages=[{"role": "user", "content": "with extras"}],
        extra_body={"x_custom_flag": True},
    )
    check("with extras" in unknown.choices[0].message.content, "unknown fields forwarded to OpenAI-protocol providers")


def json_mode():
    resp = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give me JSON"}],
        response_format={"type": "json_object"},
    )
    check(isinstance(json.loads(resp.choices[0].message.content), dict), "json_object answer parses")
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    resp = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "A person"}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}},
    )
    person = json.loads(resp.choices[0].message.content)
    check(set(person) == {"name", "age"}, "json_schema answer follows the schema")


def usage_in_streams():
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "no usage please"}], stream=True
        )
    )
    check(all(c.usage is None for c in chunks), "no usage chunk unless asked")
    check(all((c.model_extra or {}).get("provider") == "alpha" for c in chunks), "extensions ride on every chunk")


def every_error_type():
    def expect(exc, status, code=None, **kwargs):
        try:
            result = client.chat.completions.create(**kwargs)
            if kwargs.get("stream"):
                for _ in result:
                    pass
            check(False, f"{exc.__name__} expected")
        except exc as e:
            got = getattr(e, "status_code", None)
            check(status is None or got == status, f"{exc.__name__} with status {status}")
            if code:
                check(getattr(e, "code", None) == code, f"error code {code}")
            return e

    msg = [{"role": "user", "content": "x"}]
    limited = OpenAI(base_url=BASE_URL, api_key=os.environ["TOKENROUTER_LIMITED_KEY"], max_retries=0)
    try:
        limited.chat.completions.create(model=f"alpha:{MODEL}", messages=msg)
        check(False, "a model outside the key's list must raise")
    except openai.PermissionDeniedError as e:
        check(e.status_code == 403 and e.code == "model_not_allowed", "403 model not allowed")
    e = expect(openai.RateLimitError, 429, "rate_limit_exceeded", model="ratelimited:m", messages=msg)
    check(e.response.headers.get("retry-after") == "3", "429 carries Retry-After")
    expect(openai.InternalServerError, 502, "bad_upstream_response", model="garbage:m", messages=msg)
    expect(openai.InternalServerError, 503, "provider_unavailable", model="down:m", messages=msg)
    expect(openai.InternalServerError, 504, "upstream_timeout", model="sleepy:m", messages=msg)
    expect(openai.APIError, None, None, model="midstream:m", messages=msg, stream=True)
    expect(openai.APIStatusError, 413, "request_too_large", model=MODEL, messages=[{"role": "user", "content": "x" * 300_000}])
    expect(openai.BadRequestError, 400, "invalid_value", model=MODEL, messages=msg, top_p=3)
    expect(openai.BadRequestError, 400, "invalid_value", model=MODEL, messages=[{"role": "wizard", "content": "x"}])


def models():
    ids = [m.id for m in client.models.list()]
    check(MODEL in ids and f"alpha:{MODEL}" in ids, "models.list includes bare and provider:model ids")
    check(client.models.retrieve(MODEL).id == MODEL, "models.retrieve")


if __name__ == "__main__":
    print(f"openai {openai.__version__}")
    chat_non_streaming()
    chat_streaming()
    tool_calls()
    errors()
    every_parameter()
    json_mode()
    usage_in_streams()
    every_error_type()
    models()
    print("all compatibility checks passed")
