//! The mutator of `fuzz-stable`: stacked random edits of an input (bit flips, byte inserts and
//! deletes, range duplication, splices with other seeds, truncation, dictionary tokens, extreme
//! numbers, line edits, line-end rewrites, UTF-8 insertions).

use tokenrouter_fuzz_props::Rng;

/// Tokens the mutator inserts: SSE framing, the JSON keys and values the translators read, and
/// values that break naive code.
const DICTIONARY: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\r",
    b"\n\n",
    b"\r\n\r\n",
    b"data: ",
    b"data:",
    b"event: ",
    b": keep-alive\n",
    b"data: [DONE]\n\n",
    b"[DONE]",
    b"event: error\n",
    b"\"choices\":[]",
    b"\"choices\":[{\"index\":0,\"delta\":{}}]",
    b"\"usage\":{\"prompt_tokens\":18446744073709551615,\"completion_tokens\":1}",
    b"\"usage\":{\"input_tokens\":18446744073709551615,\"cache_read_input_tokens\":1}",
    b"\"tool_calls\":[{\"index\":18446744073709551615}]",
    b"\"tool_calls\":[{\"id\":\"x\",\"function\":{\"name\":\"f\"}}]",
    b"\"tool_calls\":[{}]",
    b"\"content\":[{\"type\":\"thinking\",\"thinking\":[{\"type\":\"text\",\"text\":\"t\"}]}]",
    b"\"finish_reason\":\"model_length\"",
    b"\"finish_reason\":\"error\"",
    b"\"finish_reason\":\"insufficient_system_resource\"",
    b"\"object\":\"error\"",
    b"\"error\":{\"message\":\"m\"}",
    b"\"type\":\"message_stop\"",
    b"\"type\":\"content_block_start\"",
    b"\"type\":\"content_block_stop\"",
    b"\"type\":\"tool_use\"",
    b"\"type\":\"thinking\"",
    b"\"type\":\"input_json_delta\"",
    b"\"index\":",
    b"\"index\":18446744073709551615",
    b"\"index\":-1",
    b"\"id\":\"call_1\"",
    b"\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}",
    b"\"delta\":{\"tool_calls\":[{\"index\":18446744073709551615}]}",
    b"\"content\":[{\"type\":\"text\",\"text\":\"t\"}]",
    b"\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"delta\":{\"content\":\"x\"}}]",
    b"\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":18446744073709551615}",
    b"\"usage\":{\"output_tokens\":18446744073709551615}",
    b"\"reasoning_content\":\"r\"",
    b"\"thoughtSignature\":\"s\"",
    b"\"functionCall\":{\"name\":\"f\",\"args\":{}}",
    b"\"usageMetadata\":{\"promptTokenCount\":18446744073709551615,\"candidatesTokenCount\":2}",
    b"\\ud800",
    b"\\udc00",
    b"\\u0000",
    b"\\\"",
    b"18446744073709551615",
    b"18446744073709551616",
    b"-1",
    b"1e400",
    b"-0",
    b"9007199254740993",
    b"null",
    b"[]",
    b"{}",
    b"\"\"",
    b"true",
    "é".as_bytes(),
    "😀".as_bytes(),
    b"\xc3",
    b"\xf0\x9f",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\0",
];

const INTERESTING_BYTES: &[u8] = b"\n\r:{}[]\",\\ 0-e\xff\xc3\x80";

const NUMBERS: &[&[u8]] = &[
    b"0",
    b"1",
    b"-1",
    b"18446744073709551615",
    b"18446744073709551616",
    b"9223372036854775808",
    b"4294967295",
    b"1e400",
    b"0.5",
];

/// Stacked random edits.
pub struct Mutator {
    pub rng: Rng,
}

impl Mutator {
    fn range(&mut self, len: usize) -> (usize, usize) {
        let start = self.rng.below(len + 1);
        let max = (len - start).min(64);
        let end = start + if max == 0 { 0 } else { 1 + self.rng.below(max) };
        (start, end)
    }

    pub fn mutate(&mut self, input: &mut Vec<u8>, pool: &[Vec<u8>], max_len: usize) {
        let rounds = 1 + self.rng.below(4);
        for _ in 0..rounds {
            let len = input.len();
            let at = self.rng.below(len + 1);
            match self.rng.below(17) {
                0 if len > 0 => {
                    let i = self.rng.below(len);
                    input[i] ^= 1 << self.rng.below(8);
                }
                1 if len > 0 => {
                    let i = self.rng.below(len);
                    input[i] = INTERESTING_BYTES[self.rng.below(INTERESTING_BYTES.len())];
                }
                2 => {
                    let b = self.rng.next_u64() as u8;
                    input.insert(at, b);
                }
                3 => {
                    let (s, e) = self.range(len);
                    input.drain(s..e);
                }
                4 => {
                    let (s, e) = self.range(len);
                    let copy = input[s..e].to_vec();
                    let to = self.rng.below(len + 1);
                    input.splice(to..to, copy);
                }
                5 if !pool.is_empty() => {
                    // Splice a piece of another seed in.
                    let other = &pool[self.rng.below(pool.len())];
                    let (s, e) = self.range(other.len());
                    input.splice(at..at, other[s..e].iter().copied());
                }
                6 if !pool.is_empty() => {
                    // Crossover: this input's head, another's tail.
                    let other = &pool[self.rng.below(pool.len())];
                    let from = self.rng.below(other.len() + 1);
                    input.truncate(at);
                    input.extend_from_slice(&other[from..]);
                }
                7 => input.truncate(at),
                8 => {
                    let token = DICTIONARY[self.rng.below(DICTIONARY.len())];
                    input.splice(at..at, token.iter().copied());
                }
                9 => self.replace_number(input),
                10 => self.edit_line(input),
                11 => self.rewrite_line_ends(input),
                12 => {
                    // Cut a multi-byte UTF-8 sequence short, or drop a lone continuation byte in.
                    match input.iter().position(|&b| b >= 0xC0) {
                        Some(i) if self.rng.below(2) == 0 && i + 1 < input.len() => {
                            input.remove(i + 1);
                        }
                        _ => input.insert(at, 0x80 | (self.rng.next_u64() as u8 & 0x3F)),
                    }
                }
                14 | 15 => {
                    // A JSON member from the dictionary right after a `{`, so the object stays
                    // valid and the translators read it.
                    let braces: Vec<usize> = (0..len).filter(|&i| input[i] == b'{').collect();
                    let members: Vec<&[u8]> = DICTIONARY
                        .iter()
                        .copied()
                        .filter(|t| t.starts_with(b"\"") && t.windows(2).any(|w| w == b"\":"))
                        .collect();
                    if !braces.is_empty() {
                        let at = braces[self.rng.below(braces.len())] + 1;
                        let mut member = members[self.rng.below(members.len())].to_vec();
                        member.push(b',');
                        input.splice(at..at, member);
                    }
                }
                13 => {
                    // Empty a JSON string: `"…"` → `""`.
                    if let Some(open) = input[at.min(len)..].iter().position(|&b| b == b'"') {
                        let open = at + open + 1;
                        if let Some(close) = input[open..].iter().position(|&b| b == b'"') {
                            input.drain(open..open + close);
                        }
                    }
                }
                _ => {
                    // Repeat a range many times (long lines, many events).
                    let (s, e) = self.range(len);
                    let copy = input[s..e].to_vec();
                    for _ in 0..(2 + self.rng.below(30)) {
                        input.splice(e..e, copy.iter().copied());
                    }
                }
            }
        }
        input.truncate(max_len);
    }

    fn replace_number(&mut self, input: &mut Vec<u8>) {
        let digits: Vec<usize> = (0..input.len())
            .filter(|&i| input[i].is_ascii_digit() && (i == 0 || !input[i - 1].is_ascii_digit()))
            .collect();
        if digits.is_empty() {
            return;
        }
        let start = digits[self.rng.below(digits.len())];
        let end = start
            + input[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
        let number = NUMBERS[self.rng.below(NUMBERS.len())];
        input.splice(start..end, number.iter().copied());
    }

    fn edit_line(&mut self, input: &mut Vec<u8>) {
        let mut lines: Vec<Vec<u8>> = input.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        let n = lines.len();
        let i = self.rng.below(n);
        match self.rng.below(3) {
            0 if n > 1 => {
                lines.remove(i);
            }
            1 => {
                let copy = lines[i].clone();
                lines.insert(i, copy);
            }
            _ => {
                let j = self.rng.below(n);
                lines.swap(i, j);
            }
        }
        *input = lines.join(&b'\n');
    }

    fn rewrite_line_ends(&mut self, input: &mut Vec<u8>) {
        let to: &[u8] = match self.rng.below(3) {
            0 => b"\r\n",
            1 => b"\r",
            _ => b"\n",
        };
        let all = self.rng.below(2) == 0;
        let mut out = Vec::with_capacity(input.len() + input.len() / 8);
        for &b in input.iter() {
            if b == b'\n' && (all || self.rng.below(4) == 0) {
                out.extend_from_slice(to);
            } else {
                out.push(b);
            }
        }
        *input = out;
    }
}
