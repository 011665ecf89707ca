"""Drives translated providers through a running data plane with the official OpenAI Python SDK.

Environment: TOKENROUTER_BASE_URL, TOKENROUTER_API_KEY, TOKENROUTER_MODELS (comma-separated
`provider:model` names; a `+thinking` suffix marks a reasoning model to run the thinking multi-turn
tool conversation on). Exits non-zero on the first failed check.
"""

import json
import os
import sys

from openai import OpenAI

client = OpenAI(base_url=os.environ["TOKENROUTER_BASE_URL"], api_key=os.environ["TOKENROUTER_API_KEY"], max_retries=0, timeout=30)

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def plain_assistant(message):
    """The assistant turn as a minimal OpenAI client would send it back (no provider extras)."""
    return {
        "role": "assistant",
        "content": message.content,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in message.tool_calls or []
        ],
    }


def run(model, thinking):
    tag = f"[{model}]"
    resp = client.chat.completions.create(model=model, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}], max_tokens=200)
    check("Hello there" in (resp.choices[0].message.content or ""), f"{tag} text")
    check(resp.choices[0].finish_reason == "stop", f"{tag} finish_reason stop")
    check(resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0, f"{tag} usage")
    check((resp.model_extra or {}).get("provider") == model.split(":")[0], f"{tag} provider extension")

    text, ids, usage = [], set(), None
    for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Stream me"}], stream=True, stream_options={"include_usage": True}, max_tokens=200):
        ids.add(chunk.id)
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
    check("Stream me" in "".join(text), f"{tag} streamed text")
    check(len(ids) == 1, f"{tag} one id per stream")
    check(usage is not None and usage.total_tokens > 0, f"{tag} usage chunk")

    messages = [{"role": "user", "content": "Weather in Paris?"}]
    resp = client.chat.completions.create(model=model, messages=messages, tools=[TOOL], max_tokens=200)
    call = resp.choices[0].message.tool_calls[0]
    check(resp.choices[0].finish_reason == "tool_calls", f"{tag} tool call finish reason")
    check(call.function.name == "get_weather" and "city" in json.loads(call.function.arguments), f"{tag} tool call arguments")

    names, args, indices = [], "", set()
    for chunk in client.chat.completions.create(model=model, messages=messages, tools=[TOOL], stream=True, max_tokens=200):
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                indices.add(tc.index)
                if tc.function and tc.function.name:
                    names.append(tc.function.name)
                if tc.function and tc.function.arguments:
                    args += tc.function.arguments
    check(names == ["get_weather"] and indices == {0}, f"{tag} streamed tool call with index 0")
    check("city" in json.loads(args), f"{tag} streamed tool arguments")

    follow = client.chat.completions.create(
        model=model,
        messages=messages + [plain_assistant(resp.choices[0].message), {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"}],
        tools=[TOOL],
        max_tokens=200,
    )
    check("18C" in (follow.choices[0].message.content or ""), f"{tag} tool result turn")

    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "JSON please"}], response_format={"type": "json_object"}, max_tokens=200)
    check(isinstance(json.loads(resp.choices[0].message.content), dict), f"{tag} JSON mode")

    if thinking:
        turn = client.chat.completions.create(model=model, messages=messages, tools=[TOOL], reasoning_effort="low", max_tokens=8000)
        message = turn.choices[0].message
        check(bool((message.model_extra or {}).get("reasoning_content")), f"{tag} reasoning_content exposed")
        check(bool(message.tool_calls), f"{tag} thinking model calls the tool")
        # Send the history back the way a plain OpenAI client does: without the opaque reasoning state.
        after = client.chat.completions.create(
            model=model,
            messages=messages + [plain_assistant(message), {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "18C and sunny"}],
            tools=[TOOL],
            reasoning_effort="low",
            max_tokens=8000,
        )
        check("18C" in (after.choices[0].message.content or ""), f"{tag} multi-turn tool use with thinking")


if __name__ == "__main__":
    for entry in os.environ["TOKENROUTER_MODELS"].split(","):
        model, _, flag = entry.partition("+")
        run(model, flag == "thinking")
    print("all provider checks passed")
