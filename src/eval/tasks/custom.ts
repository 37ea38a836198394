/**
 * User-supplied examples: JSON Lines, one `{"context": ..., "question": ...,  "answer": ...}` per
 * line, scored by exact match. Parsing is separate from reading the file so it also runs in a
 * browser; errors name the source and the 1-based line.
 */
import type { TaskExample } from './types.js';

/**
 * Examples from JSON Lines: one object per line with string fields `context`, `question` and
 * `answer` (other fields are ignored, except an optional `evidence` array of non-negative
 * integer offsets into `context`; without it evidence is []). The answer must not be empty (an
 * empty answer would be matched by an empty prediction, scoring a model that says nothing).
 * Given bytes (a file as read), each line must be valid UTF-8. Blank lines are skipped; a file
 * with no examples is an error. Errors read `{source}:{line}: {problem}`.
 *
 * @example
 * parseCustomJsonl('{"context": "Ann is 7. ", "question": "How old is Ann? ", "answer": "7"}\n', 'ages.jsonl');
 * // [{ context: 'Ann is 7. ', question: 'How old is Ann? ', answer: '7', evidence: [] }]
 */
export function parseCustomJsonl(input: string | Uint8Array, source: string): TaskExample[] {
  const examples: TaskExample[] = [];
  const lines = typeof input === 'string' ? input.split(/\r?\n/) : utf8Lines(input, source);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const where = `${source}:${i + 1}`;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new SyntaxError(`${where}: bad JSON: ${(error as Error).message}`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record))
      throw new TypeError(
        `${where}: expected a JSON object, got ${Array.isArray(record) ? 'an array' : typeof record}`,
      );
    const fields = record as Record<string, unknown>;
    const strings: Record<'context' | 'question' | 'answer', string> = {
      context: '',
      question: '',
      answer: '',
    };
    for (const key of ['context', 'question', 'answer'] as const) {
      const value = fields[key];
      if (value === undefined) throw new TypeError(`${where}: missing field "${key}"`);
      if (typeof value !== 'string')
        throw new TypeError(
          `${where}: field "${key}" must be a string, got ${value === null ? 'null' : typeof value}`,
        );
      strings[key] = value;
    }
    if (strings.answer.trim() === '')
      throw new RangeError(`${where}: field "answer" is empty; exact match needs an answer to compare with`);
    const evidence = fields.evidence ?? [];
    if (
      !Array.isArray(evidence) ||
      !evidence.every((o) => Number.isInteger(o) && o >= 0 && o < strings.context.length)
    )
      throw new TypeError(`${where}: field "evidence" must be an array of offsets into "context"`);
    examples.push({ ...strings, evidence: evidence as number[] });
  }
  if (examples.length === 0) throw new Error(`${source}: no examples (every line is blank)`);
  return examples;
}

/** Splits bytes at \n and decodes each line as strict UTF-8, naming the first bad line. */
function utf8Lines(bytes: Uint8Array, source: string): string[] {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  const lines: string[] = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x0a) continue;
    try {
      lines.push(decoder.decode(bytes.subarray(start, i)).replace(/\r$/, ''));
    } catch {
      throw new TypeError(`${source}:${lines.length + 1}: not valid UTF-8 text`);
    }
    start = i + 1;
  }
  return lines;
}

/**
 * Exact match after trimming both sides — case-sensitive by default, since answers such as
 * pass keys, UUIDs and names are exact strings; `{ caseSensitive: false }` compares lowercased.
 *
 * @example
 * exactMatch(' kitchen\n', 'kitchen'); // true
 * exactMatch('Kitchen', 'kitchen'); // false
 * exactMatch('Kitchen', 'kitchen', { caseSensitive: false }); // true
 */
export function exactMatch(
  predicted: string,
  answer: string,
  options: { caseSensitive?: boolean } = {},
): boolean {
  const a = predicted.trim();
  const b = answer.trim();
  return options.caseSensitive === false ? a.toLowerCase() === b.toLowerCase() : a === b;
}
