"""Drives a running TokenRouter data plane with the official OpenAI Python SDK.

Environment: TOKENROUTER_BASE_URL (e.g. http://127.0.0.1:8080/v1), TOKENROUTER_API_KEY,
TOKENROUTER_MODEL. Exits non-zero on the first failed check.
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
    models()
    print("all compatibility checks passed")
