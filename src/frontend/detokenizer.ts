// Incremental detokenization in the frontend, after vLLM v1's detokenizer.py: the decode window
// is seeded with the tail of the prompt, so the first generated token is decoded *after* real
// context. Decoders that strip the leading space of a sequence (SentencePiece's "▁the" → "the"
// at the start of a decode) therefore keep it: prompt "... to the" + " park", not "thepark".
//
// ids = [prompt tail ..., generated ...]; text already returned = decode(ids[prefix:read]) minus
// what came before; each push decodes ids[prefix:] and returns what grew past decode(ids[prefix:
// read]). Text that ends in U+FFFD (a character split over byte tokens) is held until complete.
import { bytesToUnicode } from "../model/demo-model.ts";
import type { Tokenizer } from "../model/tokenizer.ts";

/** Byte-level BPE's printable character → byte (GPT-2's bytes_to_unicode, inverted). */
const BYTE_OF_CHAR = new Map(bytesToUnicode().map((c, b) => [c, b] as const));

/** Prompt tokens that seed the window (vLLM: INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET = 5, plus 2). */
const PROMPT_CONTEXT = 7;
const PREFIX_WINDOW = 5;
/** A UTF-8 character has at most 4 bytes: after that many held tokens, U+FFFD is real. */
const MAX_HELD = 4;
/** Window slack before the consumed ids are dropped (keeps memory flat on long generations). */
const TRIM_AT = 256;

export interface DetokenizerOptions {
  skipSpecialTokens?: boolean;
}

export class IncrementalDetokenizer {
  private ids: number[];
  private prefixOffset: number;
  private readOffset: number;
  private readonly skip: boolean;

  constructor(
    private readonly tok: Tokenizer,
    promptTokenIds: ArrayLike<number>,
    opts: DetokenizerOptions = {},
  ) {
    this.skip = opts.skipSpecialTokens ?? true;
    const n = promptTokenIds.length;
    this.ids = Array.from({ length: Math.min(n, PROMPT_CONTEXT) }, (_, i) => promptTokenIds[n - Math.min(n, PROMPT_CONTEXT) + i]!);
    this.readOffset = this.ids.length;
    this.prefixOffset = Math.max(0, this.readOffset - PREFIX_WINDOW);
  }

  private decode(ids: number[], skip = this.skip): string {
    return this.tok.decode(ids, { skipSpecialTokens: skip });
  }

  /** Adds one generated token; returns the text it completes ("" while held back). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    const held = this.ids.length - this.readOffset;
    if (full.length <= prefix.length) return "";
    if (full.endsWith("\uFFFD") && held < MAX_HELD) return "";
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    if (this.prefixOffset > TRIM_AT) {
      this.ids = this.ids.slice(this.prefixOffset);
      this.readOffset -= this.prefixOffset;
      this.prefixOffset = 0;
    }
    return full.slice(prefix.length);
  }

  /** At the end of a stream: whatever is still held (an incomplete character decodes as U+FFFD). */
  flush(): string {
    if (this.readOffset === this.ids.length) return "";
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return full.length > prefix.length ? full.slice(prefix.length) : "";
  }

  /**
   * The text each of `ids` would add right after everything pushed so far (special tokens
   * shown): logprob token strings that keep their leading space, as in the generated text.
   */
  tokenStrings(ids: readonly number[]): string[] {
    const ctx = this.ids.slice(this.prefixOffset);
    const before = this.decode(ctx, false);
    // After an incomplete character (held bytes), a byte token continues or rewrites the tail
    // rather than appending: such tokens are shown bare (U+FFFD; see partialBytes).
    const midCharacter = before.endsWith("\uFFFD");
    return ids.map((id) => {
      const after = midCharacter ? "" : this.decode([...ctx, id], false);
      return !midCharacter && after.startsWith(before) ? after.slice(before.length) : this.decode([id], false);
    });
  }

  /**
   * The raw bytes of a token that is not a whole character on its own (its string is U+FFFD):
   * SentencePiece byte-fallback pieces (<0xE2>) and byte-level BPE pieces. Null when the
   * token's text is whole (its UTF-8 encoding is then its bytes) or its bytes are unknown.
   */
  partialBytes(id: number, text: string): number[] | null {
    if (!text.includes("\uFFFD")) return null;
    const piece = this.tok.idToToken(id);
    if (piece === undefined) return null;
    const hex = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
    if (hex) return [parseInt(hex[1]!, 16)];
    const bytes: number[] = [];
    for (const c of piece) {
      const b = BYTE_OF_CHAR.get(c);
      if (b === undefined) return null;
      bytes.push(b);
    }
    return bytes;
  }
}
