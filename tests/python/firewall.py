"""The firewall as the official OpenAI Python SDK sees it: a blocked request raises BadRequestError
with code content_filter (and is not retried), masked input reaches the (echoing) simulator masked,
and masked or blocked output never carries the planted card, plain or streamed (the simulator
streams word by word, so the card arrives split across chunks).

Environment: TOKENROUTER_BASE_URL, TOKENROUTER_MASK_KEY (input: api_key blocked, email masked;
output: credit_card masked), TOKENROUTER_BLOCK_KEY (output: credit_card blocked),
TOKENROUTER_MODEL. Run by tests/tests/e2e/python.rs.
"""

import os
import sys

import openai
from openai import BadRequestError, OpenAI

BASE_URL = os.environ["TOKENROUTER_BASE_URL"]
MODEL = os.environ["TOKENROUTER_MODEL"]
CARD = "4111 1111 1111 1111"


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def ask(text):
    return [{"role": "user", "content": text}]


def streamed(client, text):
    out, finish = [], None
    for chunk in client.chat.completions.create(model=MODEL, messages=ask(text), stream=True):
        for choice in chunk.choices:
            out.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return "".join(out), finish


print(f"openai {openai.__version__}")
masking = OpenAI(base_url=BASE_URL, api_key=os.environ["TOKENROUTER_MASK_KEY"], max_retries=2)
try:
    masking.chat.completions.create(model=MODEL, messages=ask("key sk-proj-abcdefghijklmnopqrstuvwx0123"))
    check(False, "a secret in the input is blocked")
except BadRequestError as e:
    check(e.status_code == 400 and e.code == "content_filter", "blocked input is BadRequestError content_filter")
    check(e.param == "messages", "param is messages")
    check("sk-proj" not in str(e), "the error does not quote the secret")

raw = masking.chat.completions.with_raw_response.create(model=MODEL, messages=ask("mail jane@example.com please"))
content = raw.parse().choices[0].message.content
check("[EMAIL_1]" in content and "jane@" not in content, "masked input reached the provider masked")
check(raw.headers.get("x-tokenrouter-firewall") == "emails", "x-tokenrouter-firewall names the rule")

answer = masking.chat.completions.create(model=MODEL, messages=ask(f"card {CARD} ok"))
content = answer.choices[0].message.content
check("[CREDIT_CARD_1]" in content and "4111" not in content, "masked output, plain")
text, finish = streamed(masking, f"card {CARD} ok")
check("[CREDIT_CARD_1]" in text and "4111" not in text and finish == "stop", "masked output, streamed")

blocking = OpenAI(base_url=BASE_URL, api_key=os.environ["TOKENROUTER_BLOCK_KEY"], max_retries=0)
answer = blocking.chat.completions.create(model=MODEL, messages=ask(f"card {CARD} ok"))
check(answer.choices[0].finish_reason == "content_filter", "blocked output ends with content_filter, plain")
check("4111" not in (answer.choices[0].message.content or ""), "blocked output sends none of the match")
text, finish = streamed(blocking, f"my card is {CARD} ok")
check(finish == "content_filter" and "4111" not in text, "blocked output, streamed")

print("all firewall checks passed")
