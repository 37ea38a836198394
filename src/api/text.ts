/**
 * Tokens to text while they are generated: only settled text is released — never half of a
 * UTF-8 character (a byte-level model emits one byte at a time), never the start of a stop string
 * that may still complete.
 */
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** Bytes of the longest UTF-8 character: at most this many tokens hold an unfinished one. */
const MAX_CHAR_TOKENS = 4;

/**
 * Turns a growing list of tokens into text pieces. `push` returns the text that became settled
 * (possibly ''), `stopped` turns true once a stop string appears (the text is cut before it),
 * and `finish` releases whatever is left.
 *
 * @example
 * const text = new TextStream(tokenizer, ['\n\n']);
 * for (const t of tokens) process.stdout.write(text.push(t));
 * process.stdout.write(text.finish());
 */
export class TextStream {
  /** Tokens not yet turned into released text. */
  private pending: number[] = [];
  /** Decoded text not yet released (it may be the start of a stop string). */
  private held = '';
  private done = false;
  /** All text released so far. */
  text = '';

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly stops: readonly string[] = [],
  ) {
    for (const s of stops)
      if (typeof s !== 'string' || s.length === 0) throw new RangeError('stop strings must be non-empty');
  }

  /** True once a stop string was produced: the caller should end generation. */
  get stopped(): boolean {
    return this.done;
  }

  /** Adds one token; returns the newly settled text. */
  push(token: number): string {
    if (this.done) return '';
    this.pending.push(token);
    const decoded = this.tokenizer.decode(this.pending);
    // An unfinished character decodes as U+FFFD at the end; wait for its next bytes (a few at most).
    if (decoded.endsWith('\uFFFD') && this.pending.length < MAX_CHAR_TOKENS) return '';
    this.pending = [];
    this.held += decoded;
    return this.release(false);
  }

  /** Ends the stream: releases what is held (cut at a stop string, if one appeared). */
  finish(): string {
    if (!this.done && this.pending.length > 0) this.held += this.tokenizer.decode(this.pending);
    this.pending = [];
    return this.release(true);
  }

  private release(final: boolean): string {
    if (this.done) return '';
    // A stop string may span released and held text: search the joined tail.
    const tail = this.text.slice(-this.longestStop()) + this.held;
    const offset = tail.length - this.held.length;
    let cut = -1;
    for (const s of this.stops) {
      const at = tail.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    let out: string;
    if (cut >= 0) {
      this.done = true;
      out = this.held.slice(0, Math.max(0, cut - offset));
      this.held = '';
    } else {
      const keep = final ? 0 : this.stopPrefixLength(tail);
      out = this.held.slice(0, this.held.length - Math.min(keep, this.held.length));
      this.held = this.held.slice(out.length);
    }
    this.text += out;
    return out;
  }

  private longestStop(): number {
    return this.stops.reduce((a, s) => Math.max(a, s.length), 0);
  }

  /** Length of the longest end of `text` that is the start of some stop string. */
  private stopPrefixLength(text: string): number {
    let best = 0;
    for (const s of this.stops)
      for (let n = Math.min(s.length - 1, text.length); n > best; n--)
        if (text.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
    return best;
  }
}
