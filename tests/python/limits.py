"""Spend control as the official OpenAI Python SDK sees it: `x-ratelimit-*` headers on successes,
`RateLimitError` with OpenAI's codes and `Retry-After` on 429s, the SDK's own retry honouring
`Retry-After` for a concurrency limit, and no retry for an exhausted budget (`x-should-retry`).

Environment: TOKENROUTER_BASE_URL, TOKENROUTER_RPM_KEY (3 requests per minute),
TOKENROUTER_SLOT_KEY (one request at a time), TOKENROUTER_BUDGET_KEY (a budget smaller than one
request), TOKENROUTER_MODEL. Run by tests/tests/e2e/python.rs.
"""

import os
import sys
import threading
import time

import openai
from openai import OpenAI, RateLimitError

BASE_URL = os.environ["TOKENROUTER_BASE_URL"]
MODEL = os.environ["TOKENROUTER_MODEL"]
MESSAGES = [{"role": "user", "content": "hi"}]


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)
    print(f"ok: {what}")


print(f"openai {openai.__version__}")
rpm = OpenAI(base_url=BASE_URL, api_key=os.environ["TOKENROUTER_RPM_KEY"], max_retries=0)
raw = rpm.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES, max_tokens=20)
check(raw.headers["x-ratelimit-limit-requests"] == "3", "x-ratelimit-limit-requests on a success")
check(raw.headers["x-ratelimit-remaining-requests"] == "2", "x-ratelimit-remaining-requests counts down")
check(raw.headers["x-ratelimit-reset-requests"].endswith("s"), "x-ratelimit-reset-requests is a duration")
check(raw.parse().choices[0].message.content, "the answer parses")
for _ in range(2):
    rpm.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=20)
try:
    rpm.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=20)
    check(False, "the fourth request in a minute is refused")
except RateLimitError as e:
    check(e.status_code == 429, "RateLimitError is a 429")
    check(e.code == "rate_limit_exceeded", "code rate_limit_exceeded")
    check("3 requests per minute" in e.message, "the message names the limit")
    check(1 <= int(e.response.headers["retry-after"]) <= 60, "Retry-After in whole seconds")

# One slot: a slow stream holds it; the SDK's own retries (Retry-After: 1) get in after it ends.
slot_key = os.environ["TOKENROUTER_SLOT_KEY"]
holder = OpenAI(base_url=BASE_URL, api_key=slot_key, max_retries=0)
stream = holder.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=20, stream=True)
first = next(iter(stream))
done = threading.Event()


def drain():
    for _ in stream:
        pass
    done.set()


threading.Thread(target=drain, daemon=True).start()
patient = OpenAI(base_url=BASE_URL, api_key=slot_key, max_retries=8)
started = time.monotonic()
answer = patient.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=20)
check(done.is_set(), "the retried request got in only after the stream released its slot")
check(answer.choices[0].message.content, f"the SDK's retry succeeded after {time.monotonic() - started:.1f}s")

budget = OpenAI(base_url=BASE_URL, api_key=os.environ["TOKENROUTER_BUDGET_KEY"], max_retries=3)
started = time.monotonic()
try:
    budget.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=20)
    check(False, "a request over the budget is refused")
except RateLimitError as e:
    check(e.code == "insufficient_quota", "code insufficient_quota")
    check(e.response.headers.get("x-should-retry") == "false", "x-should-retry: false")
    check(time.monotonic() - started < 0.4, "the SDK did not retry an exhausted budget")
print("all limit checks passed")
